//! The Knot differential with DO set (RFC 3225): the same queries as `knot_diff`, each sent
//! again with the DO bit, to `knotd` and Meridian serving the unsigned fixture zone. Both must
//! agree, and for each server DO must change nothing but the OPT record's DO echo (an unsigned
//! zone has no RRSIG or NSEC to add, RFC 4035 §3.1).

use hickory_proto::op::Message;

use crate::knot_diff::{Knot, Via, cases, compare, describe, meridian_addr};
use crate::support::Meridian;

/// `packet` with DO set to `dnssec_ok` in its OPT record; `None` without one (DO lives in the
/// OPT record).
fn with_do(packet: &[u8], dnssec_ok: bool) -> Option<Vec<u8>> {
    let mut m = Message::from_vec(packet).ok()?;
    m.edns.as_mut()?.set_dnssec_ok(dnssec_ok);
    Some(m.to_vec().expect("encode query"))
}

/// How `server`'s reply to the DO query differs from its reply to the same query without DO,
/// beyond the echoed DO bit.
fn do_changes(server: &str, query: &[u8], plain: &[u8], with_do: &[u8]) -> Vec<String> {
    let Ok(mut reply) = Message::from_vec(with_do) else {
        return vec![format!("{server}: the DO reply does not parse")];
    };
    let Some(edns) = reply.edns.as_mut().filter(|e| e.flags().dnssec_ok) else {
        return vec![format!("{server}: DO not echoed")];
    };
    edns.set_dnssec_ok(false);
    let reply = reply.to_vec().expect("re-encode reply");
    compare(query, plain, &reply)
        .into_iter()
        .map(|d| format!("{server}, without DO / with DO: {d}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_changes_nothing_on_an_unsigned_zone_and_knot_agrees() {
    let knot = Knot::start().await;
    let meridian = Meridian::start("", "").await;
    let mut compared = 0;
    let mut mismatched = 0;
    for case in cases() {
        let (Some(plain), Some(query)) =
            (with_do(&case.packet, false), with_do(&case.packet, true))
        else {
            continue;
        };
        let vias: &[Via] = if case.tcp {
            &[Via::Udp, Via::Tcp]
        } else {
            &[Via::Udp]
        };
        for &via in vias {
            let k_plain = via.exchange(knot.addr, &plain).await;
            let k = via.exchange(knot.addr, &query).await;
            let m_addr = meridian_addr(&meridian, via);
            let m_plain = via.exchange(m_addr, &plain).await;
            let m = via.exchange(m_addr, &query).await;
            compared += 1;
            let mut diffs = compare(&query, &k, &m);
            diffs.extend(do_changes("Knot", &plain, &k_plain, &k));
            diffs.extend(do_changes("Meridian", &plain, &m_plain, &m));
            if !diffs.is_empty() {
                mismatched += 1;
                println!("MISMATCH {via:?} {}", describe(&query));
                for d in diffs {
                    println!("    {d}");
                }
            }
        }
    }
    println!("knot_diff_do: {compared} exchanges compared, {mismatched} mismatched");
    meridian.stop().await;
    assert!(compared >= 60, "only {compared} exchanges compared");
    assert_eq!(
        mismatched, 0,
        "{mismatched} of {compared} DO replies differ (diffs above)"
    );
}
