//! `type = "dns"`: a DNS query of the member (for pools of resolvers or other DNS servers),
//! sent with hickory's client over UDP, and again over TCP when the answer comes back
//! truncated (RFC 1035 §4.2.1). Up when the response code is the expected one and, if an
//! address is expected, the answer holds it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use hickory_net::NetError;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::op::{DnsResponse, ResponseCode};
use hickory_net::proto::rr::{DNSClass, RData};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;

use super::ProbeError;
use crate::model::{DnsCheck, ProbeSpec};

/// Queries `spec.target` as `check` says and judges the answer.
pub(super) async fn run(check: &DnsCheck, spec: &ProbeSpec) -> Result<(), ProbeError> {
    let provider = TokioRuntimeProvider::new();
    let bind = spec
        .source
        .filter(|s| s.is_ipv4() == spec.target.is_ipv4())
        .map(|ip| SocketAddr::new(ip, 0));
    let udp = UdpClientStream::builder(spec.target, provider.clone())
        .with_timeout(Some(spec.timeout))
        .with_bind_addr(bind)
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(udp);
    let mut response = ask(client, background, check).await?;
    if response.metadata.truncation {
        let (connect, handle) =
            TcpClientStream::new(spec.target, bind, Some(spec.timeout), provider);
        let stream = connect.await.map_err(|e| net_error(&e))?;
        let (client, background) =
            Client::<TokioRuntimeProvider>::with_timeout(stream, handle, spec.timeout);
        response = ask(client, background, check).await?;
    }
    judge(check, &response)
}

/// Sends the query, driving the client's background exchange in the same task (so nothing
/// outlives the probe).
async fn ask(
    mut client: Client<TokioRuntimeProvider>,
    background: impl Future<Output = ()>,
    check: &DnsCheck,
) -> Result<DnsResponse, ProbeError> {
    let query = client.query(check.name.clone(), DNSClass::IN, check.qtype);
    tokio::pin!(background);
    tokio::select! {
        response = query => response.map_err(|e| net_error(&e)),
        () = &mut background => Err(ProbeError::Dns("connection closed".to_string())),
    }
}

fn judge(check: &DnsCheck, response: &DnsResponse) -> Result<(), ProbeError> {
    let rcode = response.metadata.response_code;
    if rcode != check.rcode {
        return Err(ProbeError::Dns(format!("rcode {}", mnemonic(rcode))));
    }
    let Some(want) = check.address else {
        return Ok(());
    };
    let found = response.answers.iter().any(|r| match &r.data {
        RData::A(a) => IpAddr::V4(a.0) == want,
        RData::AAAA(a) => IpAddr::V6(a.0) == want,
        _ => false,
    });
    if found {
        Ok(())
    } else {
        Err(ProbeError::Dns(format!("no address {want} in answer")))
    }
}

fn net_error(e: &NetError) -> ProbeError {
    match e {
        NetError::Timeout => ProbeError::Dns("timeout".to_string()),
        other => ProbeError::Dns(other.to_string()),
    }
}

/// The RFC 1035 mnemonic of a response code (`SERVFAIL`), as operators write them.
fn mnemonic(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_string(),
        ResponseCode::FormErr => "FORMERR".to_string(),
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        ResponseCode::NXDomain => "NXDOMAIN".to_string(),
        ResponseCode::NotImp => "NOTIMP".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        other => u16::from(other).to_string(),
    }
}
