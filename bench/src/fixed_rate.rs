//! `fixed-rate`: an open-loop load generator for `bench/run.sh`'s
//! `cc_fixed_rate` scenario: client-credentials token requests sent at a
//! fixed rate whatever the server's pace, with latency measured from when
//! each request was due, not from when it went out, so that a stall counts
//! against every request it delays (the coordinated-omission correction of
//! wrk2 and `oha -q`). Request `i` is due at `start + i / RATE`; `CONNS`
//! connections take the next due request in turn, wait for its time, send
//! it and read the answer. When the server falls behind, every connection
//! is still busy when a request falls due: it goes out late, and its
//! latency counts from when it was due. A request sent on time counts from
//! when it went out, so the timer's millisecond slack is not charged to the
//! server.
//!
//! Prints one `BENCHJSON {…}` line in the shape of `wrk/token_load.lua`'s,
//! plus `rate` (asked), `p999_us` and `late` (requests that found every
//! connection busy more than 1 ms after they were due).
//!
//! ```text
//! fixed-rate PORT SECONDS RATE CONNS CLIENT_ID SECRET
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};

mod latency;
use latency::{Latencies, micros};

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    err_status: u64,
    err_transport: u64,
    late: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, seconds, rate, conns, client_id, secret] = args.as_slice() else {
        eprintln!("usage: fixed-rate PORT SECONDS RATE CONNS CLIENT_ID SECRET");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().expect("SECONDS is a number");
    let rate: f64 = rate.parse().expect("RATE is a number");
    let conns: usize = conns.parse().expect("CONNS is a number");
    assert!(rate > 0.0 && seconds > 0 && conns > 0, "positive numbers");
    let url = format!("http://127.0.0.1:{port}/token");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (total, elapsed) = runtime.block_on(run(
        url,
        client_id.clone(),
        secret.clone(),
        seconds,
        rate,
        conns,
    ));
    report(&total, elapsed, rate);
}

async fn run(
    url: String,
    client_id: String,
    secret: String,
    seconds: u64,
    rate: f64,
    conns: usize,
) -> (Tally, Duration) {
    let requests = (rate * seconds as f64).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (url, client_id, secret, next) =
                (url.clone(), client_id.clone(), secret.clone(), next.clone());
            tokio::spawn(async move {
                // One keep-alive connection per task.
                let client = Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("an HTTP client");
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let due = start + interval.mul_f64(i as f64);
                    // This connection became free now: when that is after the
                    // request was due, every connection was busy with the
                    // server, and the wait counts in its latency. Otherwise
                    // the timer's own slack (about a millisecond) does not.
                    let free_at = Instant::now();
                    tokio::time::sleep_until(due.into()).await;
                    let measured_from = if free_at > due {
                        if free_at - due > Duration::from_millis(1) {
                            tally.late += 1;
                        }
                        due
                    } else {
                        Instant::now()
                    };
                    let answer = client
                        .post(&url)
                        .basic_auth(&client_id, Some(&secret))
                        .form(&[
                            ("grant_type", "client_credentials"),
                            ("scope", "read write"),
                        ])
                        .send()
                        .await;
                    match answer {
                        Ok(response) => {
                            let status = response.status();
                            let read = response.bytes().await;
                            let latency = micros(measured_from.elapsed());
                            match read {
                                Ok(_) if status == StatusCode::OK => {
                                    tally.latencies_us.push(latency)
                                }
                                Ok(_) => tally.err_status += 1,
                                Err(_) => tally.err_transport += 1,
                            }
                        }
                        Err(_) => tally.err_transport += 1,
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a connection");
        total.latencies_us.extend(tally.latencies_us);
        total.err_status += tally.err_status;
        total.err_transport += tally.err_transport;
        total.late += tally.late;
    }
    (total, start.elapsed())
}

fn report(total: &Tally, elapsed: Duration, rate: f64) {
    let latencies = Latencies::new(total.latencies_us.clone());
    println!(
        "BENCHJSON {{\"requests\":{},\"duration_us\":{},\"rps\":{:.1},\"rate\":{:.1},{},\"p999_us\":{},\"err_connect\":0,\"err_read\":{},\"err_write\":0,\"err_status\":{},\"err_timeout\":0,\"late\":{}}}",
        total.latencies_us.len(),
        elapsed.as_micros(),
        total.latencies_us.len() as f64 / elapsed.as_secs_f64(),
        rate,
        latencies.json_members(),
        latencies.percentile(99.9),
        total.err_transport,
        total.err_status,
        total.late,
    );
}
