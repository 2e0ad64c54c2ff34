//! The one integration test binary: a real Meridian on `127.0.0.1:0`, real DNS over UDP and
//! TCP. One module per topic.

mod alerts;
mod architecture;
mod backend;
mod browser;
mod checks;
mod config;
mod director;
mod dns;
mod dnssec;
mod dnstap;
mod edns;
mod etcd;
mod fleet;
mod geodb;
mod health;
mod https;
mod knot_diff;
mod limits;
mod load;
mod malformed;
mod observe;
mod planes;
mod properties;
mod readme;
mod rrl;
mod services;
mod smoke;
mod steering;
mod support;
mod tcp;
mod workers;
mod zone_reader;
