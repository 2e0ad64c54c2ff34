//! Schedulers: which member of the steered pool gets a new connection. Pure functions over the
//! candidates and a little state the caller keeps per pool (a cursor, smooth-WRR weights), so
//! every algorithm is tested here without sockets and the connection path only gathers inputs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::Rng;

use crate::hash;
use crate::model::{Band, Scheduler};
use crate::select::fastest;

/// One member that may get the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// A stable identity of the member ([`member_key`]): the same across reloads and restarts.
    pub key: u64,
    /// Its weight; 0 counts as 1 (zero-weight members are only candidates when failing open).
    pub weight: u32,
    /// Connections open to it through this director now.
    pub active: u64,
    /// The moving average of its time to first byte through this director (`fastest`).
    pub rtt: Option<Duration>,
}

impl Candidate {
    fn weight(&self) -> u64 {
        u64::from(self.weight.max(1))
    }
}

/// What a scheduler remembers about one pool between picks. The caller keeps one per pool
/// (behind a lock) and passes it to every [`pick`].
#[derive(Debug, Default)]
pub struct PoolState {
    cursor: u64,
    current: HashMap<u64, i64>,
}

/// Chooses among `candidates` (never empty when called) and returns an index into it.
/// `client` is [`client_key`] of the connecting client (used by source hashing); `band` is
/// the director's `fastest_within` (used by `fastest`).
pub fn pick<R: Rng + ?Sized>(
    (scheduler, band): (Scheduler, Band),
    candidates: &[Candidate],
    state: &mut PoolState,
    client: u64,
    rng: &mut R,
) -> Option<usize> {
    let n = candidates.len();
    if n == 0 {
        return None;
    }
    let i = match scheduler {
        Scheduler::RoundRobin => {
            let i = (state.cursor % n as u64) as usize;
            state.cursor = state.cursor.wrapping_add(1);
            i
        }
        Scheduler::WeightedRoundRobin => smooth_weighted(candidates, &mut state.current),
        Scheduler::LeastConn => {
            let start = (state.cursor % n as u64) as usize;
            state.cursor = state.cursor.wrapping_add(1);
            (0..n)
                .map(|k| (start + k) % n)
                .reduce(|best, j| {
                    if less_loaded(&candidates[j], &candidates[best]) {
                        j
                    } else {
                        best
                    }
                })
                .unwrap_or(start)
        }
        Scheduler::SourceHash => rendezvous(candidates, client),
        Scheduler::Wlc => first_lowest(candidates, |c| c.active.saturating_mul(256)),
        Scheduler::Sed => first_lowest(candidates, sed_overhead),
        Scheduler::Nq => candidates
            .iter()
            .position(|c| c.active == 0)
            .unwrap_or_else(|| first_lowest(candidates, sed_overhead)),
        Scheduler::Fastest => least_time(candidates, band, rng),
        Scheduler::Random2 if n == 1 => 0,
        Scheduler::Random2 => {
            let a = rng.random_range(0..n);
            let mut b = rng.random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            if less_loaded(&candidates[b], &candidates[a]) {
                b
            } else {
                a
            }
        }
    };
    Some(i)
}

/// `fastest`: a draw by weight among the candidates whose time to first byte is within the
/// band of the fastest ([`fastest::limit`], the policy `select = "fastest"` uses); one
/// without a sample is in band, so a new member gets tried and acquires one.
fn least_time<R: Rng + ?Sized>(candidates: &[Candidate], band: Band, rng: &mut R) -> usize {
    let limit = fastest::limit(candidates.iter().map(|c| c.rtt), band);
    let inside = |c: &&Candidate| fastest::inside(c.rtt, limit);
    let total: u64 = candidates
        .iter()
        .filter(inside)
        .map(Candidate::weight)
        .sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (i, c) in candidates.iter().enumerate() {
        if !fastest::inside(c.rtt, limit) {
            continue;
        }
        if ticket < c.weight() {
            return i;
        }
        ticket -= c.weight();
    }
    0
}

/// `a` has fewer active connections per unit of weight than `b`.
fn less_loaded(a: &Candidate, b: &Candidate) -> bool {
    u128::from(a.active) * u128::from(b.weight()) < u128::from(b.active) * u128::from(a.weight())
}

/// IPVS's comparison (`ip_vs_wlc.c`, `ip_vs_sed.c`, `ip_vs_nq.c`): walking the members in
/// order, one replaces the current choice only when `overhead(current) * weight(it) >
/// overhead(it) * weight(current)`, so among equals the first in pool order wins.
fn first_lowest(candidates: &[Candidate], overhead: impl Fn(&Candidate) -> u64) -> usize {
    let mut best = 0;
    for (i, c) in candidates.iter().enumerate().skip(1) {
        let b = &candidates[best];
        if u128::from(overhead(b)) * u128::from(c.weight())
            > u128::from(overhead(c)) * u128::from(b.weight())
        {
            best = i;
        }
    }
    best
}

/// IPVS's expected delay of one more connection (`ip_vs_sed_dest_overhead`): active + 1.
fn sed_overhead(c: &Candidate) -> u64 {
    c.active.saturating_add(1)
}

/// nginx's smooth weighted round robin: every candidate gains its weight, the richest is
/// chosen and pays the total. Over any run of `total weight` picks each candidate is chosen
/// exactly `weight` times, spread out rather than in blocks.
fn smooth_weighted(candidates: &[Candidate], current: &mut HashMap<u64, i64>) -> usize {
    current.retain(|k, _| candidates.iter().any(|c| c.key == *k));
    let mut total = 0i64;
    let mut best = 0;
    let mut best_value = i64::MIN;
    for (i, c) in candidates.iter().enumerate() {
        let w = c.weight() as i64;
        total += w;
        let v = current.entry(c.key).or_insert(0);
        *v += w;
        if *v > best_value {
            best_value = *v;
            best = i;
        }
    }
    if let Some(v) = current.get_mut(&candidates[best].key) {
        *v -= total;
    }
    best
}

/// Weighted rendezvous hashing ([`hash::rendezvous`], as hash steering and selection use it):
/// the highest score of (client, member) wins, so removing a member changes only the choice of
/// the clients it won.
fn rendezvous(candidates: &[Candidate], client: u64) -> usize {
    let mut best = 0;
    let mut best_score = f64::NEG_INFINITY;
    for (i, c) in candidates.iter().enumerate() {
        let score = hash::rendezvous(client, c.key, c.weight);
        if score > best_score {
            best_score = score;
            best = i;
        }
    }
    best
}

/// The stable identity of a client address for source hashing.
pub fn client_key(addr: IpAddr) -> u64 {
    hash::addr_key(addr)
}

/// The stable identity of a member: its backend address and port.
pub fn member_key(addr: SocketAddr) -> u64 {
    hash::mix(hash::addr_key(addr.ip()) ^ u64::from(addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Candidate {
                key: member_key(SocketAddr::from(([192, 0, 2, i as u8 + 1], 80))),
                weight: w,
                active: 0,
                rtt: None,
            })
            .collect()
    }

    fn run(s: Scheduler, c: &[Candidate], picks: usize) -> Vec<usize> {
        let mut state = PoolState::default();
        let mut rng = SmallRng::seed_from_u64(1);
        (0..picks)
            .map(|_| pick((s, Band::DEFAULT), c, &mut state, 0, &mut rng).unwrap())
            .collect()
    }

    /// One pick with the default band for a client of key 0.
    fn once(s: Scheduler, c: &[Candidate], state: &mut PoolState, rng: &mut SmallRng) -> usize {
        pick((s, Band::DEFAULT), c, state, 0, rng).unwrap()
    }

    fn counts(picks: &[usize], n: usize) -> Vec<usize> {
        let mut out = vec![0; n];
        for &p in picks {
            out[p] += 1;
        }
        out
    }

    #[test]
    fn names_round_trip() {
        for (name, s) in Scheduler::ALL {
            assert_eq!(Scheduler::parse(name), Some(s));
            assert_eq!(s.name(), name);
        }
        assert_eq!(Scheduler::parse("lc"), None);
    }

    #[test]
    fn round_robin_takes_turns_whatever_the_weights() {
        let c = cands(&[1, 5, 1]);
        assert_eq!(run(Scheduler::RoundRobin, &c, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn smooth_weighted_round_robin_interleaves_exactly_by_weight() {
        // nginx's documented sequence for weights 5, 1, 1.
        let c = cands(&[5, 1, 1]);
        assert_eq!(
            run(Scheduler::WeightedRoundRobin, &c, 7),
            [0, 0, 1, 0, 2, 0, 0]
        );
        let c = cands(&[100, 200, 300]);
        let picks = run(Scheduler::WeightedRoundRobin, &c, 600);
        assert_eq!(counts(&picks, 3), [100, 200, 300]);
    }

    #[test]
    fn least_connections_is_weighted_and_breaks_ties_in_turn() {
        let mut c = cands(&[1, 1, 1]);
        assert_eq!(
            run(Scheduler::LeastConn, &c, 3),
            [0, 1, 2],
            "all idle: rotate"
        );
        c[0].active = 3;
        c[1].active = 1;
        c[2].active = 2;
        assert_eq!(run(Scheduler::LeastConn, &c, 2), [1, 1]);
        // Weight 3 with 5 active (5/3) beats weight 1 with 2 active (2/1).
        let mut c = cands(&[1, 3]);
        c[0].active = 2;
        c[1].active = 5;
        assert_eq!(run(Scheduler::LeastConn, &c, 1), [1]);
    }

    #[test]
    fn least_connections_with_held_connections_follows_weights() {
        let mut c = cands(&[1, 2, 3]);
        let mut state = PoolState::default();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..60 {
            let i = once(Scheduler::LeastConn, &c, &mut state, &mut rng);
            c[i].active += 1;
        }
        let active: Vec<u64> = c.iter().map(|c| c.active).collect();
        assert_eq!(active, [10, 20, 30]);
    }

    #[test]
    fn source_hash_sticks_and_moves_only_the_leaving_members_clients() {
        let all = cands(&[100, 100, 100, 100, 100]);
        let clients: Vec<u64> = (0..10_000u32)
            .map(|i| client_key(IpAddr::from([10, 0, (i >> 8) as u8, i as u8])))
            .collect();
        let choose = |c: &[Candidate], client: u64| {
            let mut state = PoolState::default();
            let i = pick(
                (Scheduler::SourceHash, Band::DEFAULT),
                c,
                &mut state,
                client,
                &mut rand::rng(),
            )
            .unwrap();
            c[i].key
        };
        let before: Vec<u64> = clients.iter().map(|&k| choose(&all, k)).collect();
        let again: Vec<u64> = clients.iter().map(|&k| choose(&all, k)).collect();
        assert_eq!(before, again, "the same client always gets the same member");
        let per_member: Vec<usize> = all
            .iter()
            .map(|c| before.iter().filter(|&&k| k == c.key).count())
            .collect();
        assert!(
            per_member.iter().all(|&n| (1700..2300).contains(&n)),
            "{per_member:?}"
        );

        let gone = all[2].key;
        let fewer: Vec<Candidate> = all.iter().copied().filter(|c| c.key != gone).collect();
        for (i, &k) in clients.iter().enumerate() {
            let after = choose(&fewer, k);
            if before[i] != gone {
                assert_eq!(
                    after, before[i],
                    "client {i} moved though its member stayed"
                );
            }
        }
    }

    #[test]
    fn source_hash_follows_weights() {
        let c = cands(&[100, 300]);
        let heavy = (0..20_000u32)
            .filter(|i| {
                let mut state = PoolState::default();
                let k = client_key(IpAddr::from(i.to_be_bytes()));
                pick(
                    (Scheduler::SourceHash, Band::DEFAULT),
                    &c,
                    &mut state,
                    k,
                    &mut rand::rng(),
                ) == Some(1)
            })
            .count();
        let share = heavy as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.02, "{share}");
    }

    /// The member each of `picks` connections gets when every connection is kept open.
    fn held(s: Scheduler, weights: &[u32], picks: usize) -> (String, Vec<u64>) {
        let mut c = cands(weights);
        let mut state = PoolState::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut order = String::new();
        for _ in 0..picks {
            let i = pick((s, Band::DEFAULT), &c, &mut state, 0, &mut rng).unwrap();
            c[i].active += 1;
            order.push((b'a' + i as u8) as char);
        }
        (order, c.iter().map(|c| c.active).collect())
    }

    #[test]
    fn ipvs_schedulers_pick_by_their_definitions_with_known_counts() {
        let with = |weights: &[u32], active: &[u64]| {
            let mut c = cands(weights);
            for (c, &a) in c.iter_mut().zip(active) {
                c.active = a;
            }
            c
        };
        let one = |s, c: &[Candidate]| run(s, c, 1)[0];
        // Idle, weights 1 and 3: wlc's overheads are equal (0), so the first; sed expects
        // 1/1 against 1/3, so the heavy one; nq takes the first idle one.
        let c = with(&[1, 3], &[0, 0]);
        assert_eq!(one(Scheduler::Wlc, &c), 0);
        assert_eq!(one(Scheduler::Sed, &c), 1);
        assert_eq!(one(Scheduler::Nq, &c), 0);
        // 1 and 4 open: wlc 256/1 < 1024/3; sed 2/1 > 5/3; nq: nobody idle, so sed.
        let c = with(&[1, 3], &[1, 4]);
        assert_eq!(one(Scheduler::Wlc, &c), 0);
        assert_eq!(one(Scheduler::Sed, &c), 1);
        assert_eq!(one(Scheduler::Nq, &c), 1);
        // nq prefers an idle member whatever its weight and the others' load.
        let c = with(&[100, 1, 100], &[1, 0, 0]);
        assert_eq!(one(Scheduler::Nq, &c), 1);
        assert_eq!(one(Scheduler::Sed, &c), 2);
        // Ties: the first in pool order, every time (no rotation, unlike leastconn).
        let c = with(&[2, 2, 2], &[3, 1, 1]);
        assert_eq!(run(Scheduler::Wlc, &c, 3), [1, 1, 1]);
        assert_eq!(run(Scheduler::Sed, &c, 3), [1, 1, 1]);
        assert_eq!(run(Scheduler::LeastConn, &c, 3), [1, 1, 2]);
    }

    #[test]
    fn ipvs_schedulers_fill_held_connections_in_their_own_order() {
        // Sequences from IPVS's loops for weights 1, 1, 3 and connections kept open.
        assert_eq!(held(Scheduler::Wlc, &[1, 1, 3], 10).0, "abcccabccc");
        assert_eq!(held(Scheduler::Sed, &[1, 1, 3], 10).0, "ccabcccabc");
        assert_eq!(held(Scheduler::Nq, &[1, 1, 3], 10).0, "abcccccabc");
        for s in [Scheduler::Wlc, Scheduler::Sed, Scheduler::Nq] {
            assert_eq!(held(s, &[1, 2, 3], 60).1, [10, 20, 30], "{s}");
        }
    }

    #[test]
    fn power_of_two_choices_keeps_held_connections_balanced() {
        let mut c = cands(&[1, 1, 1, 1]);
        let mut state = PoolState::default();
        let mut rng = SmallRng::seed_from_u64(9);
        for _ in 0..400 {
            let i = once(Scheduler::Random2, &c, &mut state, &mut rng);
            c[i].active += 1;
        }
        let max = c.iter().map(|c| c.active).max().unwrap();
        let min = c.iter().map(|c| c.active).min().unwrap();
        assert!(max - min <= 2, "{c:?}");
        assert_eq!(
            pick(
                (Scheduler::Random2, Band::DEFAULT),
                &c[..1],
                &mut state,
                0,
                &mut rng
            ),
            Some(0)
        );
    }

    #[test]
    fn fastest_shares_by_weight_within_the_band_and_tries_unsampled_members() {
        let ms = |n: u64| Some(Duration::from_millis(n));
        let mut c = cands(&[100, 300, 100]);
        c[0].rtt = ms(10);
        c[1].rtt = ms(11);
        c[2].rtt = ms(30);
        let picks = run(Scheduler::Fastest, &c, 8_000);
        let n = counts(&picks, 3);
        assert_eq!(n[2], 0, "out of band: {n:?}");
        let share = n[1] as f64 / 8_000.0;
        assert!((share - 0.75).abs() < 0.03, "by weight in band: {n:?}");
        // A member without a sample is in band, so it gets tried.
        c[2].rtt = None;
        let n = counts(&run(Scheduler::Fastest, &c, 5_000), 3);
        assert!(n[2] > 500, "{n:?}");
        // A narrower band: 5% of 10 ms leaves 11 ms out.
        c[2].rtt = ms(30);
        let mut state = PoolState::default();
        let mut rng = SmallRng::seed_from_u64(3);
        let band = Band::Percent(5);
        let only = (0..100)
            .map(|_| pick((Scheduler::Fastest, band), &c, &mut state, 0, &mut rng).unwrap())
            .all(|i| i == 0);
        assert!(only);
    }
}
