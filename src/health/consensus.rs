//! How a fleet's observations of one member decide its state: pure, so every instance that
//! sees the same observations decides the same, whatever it decided before.

use super::HealthState;
use crate::model::Consensus;

/// The votes on one member: live instances' observations (this instance's included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Votes {
    /// Instances that observe the member up.
    pub up: u32,
    /// Instances that observe the member down.
    pub down: u32,
}

impl Votes {
    /// Counts observations; `Unknown` (no result yet) is no vote.
    pub fn count(observations: impl IntoIterator<Item = HealthState>) -> Votes {
        let mut votes = Votes::default();
        for state in observations {
            match state {
                HealthState::Up => votes.up += 1,
                HealthState::Down => votes.down += 1,
                HealthState::Unknown => {}
            }
        }
        votes
    }

    /// Instances that voted.
    pub fn voters(&self) -> u32 {
        self.up + self.down
    }
}

/// The member's state under `policy`, given `local` (this instance's observation) and the
/// votes of every live instance (`local` included). `Local` ignores the votes; with no votes
/// at all the member is unknown; a `majority` tie keeps it up.
pub fn decide(policy: Consensus, local: HealthState, votes: Votes) -> HealthState {
    if policy == Consensus::Local {
        return local;
    }
    let n = votes.voters();
    if n == 0 {
        return HealthState::Unknown;
    }
    let down = match policy {
        Consensus::Local => unreachable!("handled above"),
        Consensus::Any => votes.down >= 1,
        Consensus::All => votes.down == n,
        Consensus::Majority => votes.down * 2 > n,
        Consensus::AtLeast(k) => votes.down >= k.min(n),
    };
    if down {
        HealthState::Down
    } else {
        HealthState::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::{Down, Unknown, Up};

    fn votes(states: &[HealthState]) -> Votes {
        Votes::count(states.iter().copied())
    }

    #[test]
    fn local_is_this_instance_alone() {
        assert_eq!(decide(Consensus::Local, Up, votes(&[Down, Down])), Up);
        assert_eq!(decide(Consensus::Local, Down, votes(&[Up, Up])), Down);
        assert_eq!(decide(Consensus::Local, Unknown, votes(&[Up])), Unknown);
    }

    #[test]
    fn majority_needs_more_than_half() {
        let m = Consensus::Majority;
        assert_eq!(decide(m, Down, votes(&[Down, Up, Up])), Up);
        assert_eq!(decide(m, Up, votes(&[Down, Down, Up])), Down);
        assert_eq!(decide(m, Up, votes(&[Down, Down, Down])), Down);
        // A tie keeps the member up.
        assert_eq!(decide(m, Down, votes(&[Down, Down, Up, Up])), Up);
        // Alone, an instance's own observation is the majority.
        assert_eq!(decide(m, Down, votes(&[Down])), Down);
    }

    #[test]
    fn any_and_all() {
        assert_eq!(decide(Consensus::Any, Up, votes(&[Up, Up, Down])), Down);
        assert_eq!(decide(Consensus::Any, Up, votes(&[Up, Up, Up])), Up);
        assert_eq!(decide(Consensus::All, Down, votes(&[Down, Down, Up])), Up);
        assert_eq!(
            decide(Consensus::All, Down, votes(&[Down, Down, Down])),
            Down
        );
    }

    #[test]
    fn a_count_is_capped_at_the_voters() {
        let two = Consensus::AtLeast(2);
        assert_eq!(decide(two, Down, votes(&[Down, Up, Up])), Up);
        assert_eq!(decide(two, Up, votes(&[Down, Down, Up])), Down);
        // One voter left: it decides.
        assert_eq!(decide(two, Down, votes(&[Down])), Down);
        assert_eq!(
            decide(Consensus::AtLeast(5), Up, votes(&[Down, Down])),
            Down
        );
    }

    #[test]
    fn unknown_observations_do_not_vote() {
        assert_eq!(
            decide(Consensus::Majority, Unknown, votes(&[Unknown, Unknown])),
            Unknown
        );
        // Joining instances without results yet change nothing.
        assert_eq!(
            decide(
                Consensus::Majority,
                Down,
                votes(&[Down, Down, Up, Unknown, Unknown])
            ),
            Down
        );
        assert_eq!(decide(Consensus::All, Down, votes(&[Down, Unknown])), Down);
    }

    #[test]
    fn instances_leaving_change_the_count() {
        // 2 of 3 down: down. The two observers leave: the one left sees it up.
        let m = Consensus::Majority;
        assert_eq!(decide(m, Up, votes(&[Up, Down, Down])), Down);
        assert_eq!(decide(m, Up, votes(&[Up])), Up);
    }
}
