//! The load generator: N tasks, each with one keep-alive HTTP/1 connection (hyper 1 client).
//!
//! Each connection signs in once (`POST /login` with `{"user":"bench-<n>"}`), keeps every cookie the reply
//! sets (and its `"token"`, used as a bearer token only when no cookie was set), then loops `GET /me` until
//! the time is up. A request counts as validated when it answers 200 and its body names the user
//! (`"bench-<n>"`); anything else is an error. Only requests started after the warm-up are counted.
//!
//! Prints one line: `rps=<f> p50_us=<n> p99_us=<n> errors=<n> requests=<n>` and exits 1 when errors > 0.
//! `load --free-port` prints a free TCP port on 127.0.0.1 (for the script) and exits.
//!
//! `load --propagate --url A --other B --logout PATH --rounds N --limit S`: two servers on one database.
//! Each round signs in on A, validates on B twice (so a cache on B holds the session), signs out on A
//! (`POST PATH`), then asks B until it refuses (anything but 200), at most S seconds. Prints
//! `propagate_p50_us=<n> propagate_p99_us=<n> propagate_max_us=<n> stale=<rounds B still served after S s> rounds=<n>`
//! (times from A's sign-out answer to B's first refusal).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use hyper::Request;
use hyper_util::rt::TokioIo;
use pylon_sessions_server_bench::{Args, Result};
use tokio::net::TcpStream;

const USAGE: &str =
    "usage: load --url http://127.0.0.1:PORT --connections N --seconds S [--warmup S]
       load --propagate --url http://A --other http://B --logout PATH [--rounds N] [--limit S]
       load --free-port";

/// Where to send requests.
struct Target {
    /// `host:port`, for connecting and the `Host` header.
    authority: String,
    /// `http://host:port`, for the `Origin` header.
    base: String,
}

/// What one connection measured.
struct Tally {
    /// Latency of validated requests, in microseconds.
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 us to 1 h, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ok: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(0) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs the load; returns the number of errors.
async fn run() -> Result<u64> {
    let args = Args::parse(USAGE, &["free-port", "propagate"]);
    if args.flag("free-port") {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        println!("{}", listener.local_addr()?.port());
        return Ok(0);
    }
    if args.flag("propagate") {
        return propagate(&args).await;
    }
    let base = args.req("url").trim_end_matches('/').to_owned();
    let authority = base
        .strip_prefix("http://")
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or("--url must look like http://HOST:PORT")?
        .to_owned();
    let connections: usize = args.num("connections", 1);
    let seconds: f64 = args.num("seconds", 4.0);
    let warmup: f64 = args.num("warmup", 1.0);
    if connections == 0 || seconds <= 0.0 || warmup < 0.0 {
        return Err("--connections must be > 0, --seconds > 0, --warmup >= 0".into());
    }

    let target = Arc::new(Target { authority, base });
    let measure_from = Instant::now() + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|n| tokio::spawn(connection(n, target.clone(), measure_from, end)))
        .collect();

    let mut total = Tally::new();
    for task in tasks {
        match task.await? {
            Ok(t) => {
                total.hist.add(&t.hist)?;
                total.ok += t.ok;
                total.errors += t.errors;
                if let Some(e) = t.first_error {
                    total.first_error.get_or_insert(e);
                }
            }
            Err(e) => total.error(e.to_string()),
        }
    }
    // The window ends when the last in-flight request has come back.
    let measured = Instant::now().saturating_duration_since(measure_from);
    if let Some(e) = &total.first_error {
        eprintln!("load: {} error(s); first: {e}", total.errors);
    }
    println!(
        "rps={:.1} p50_us={} p99_us={} errors={} requests={}",
        total.ok as f64 / measured.as_secs_f64(),
        total.hist.value_at_quantile(0.50),
        total.hist.value_at_quantile(0.99),
        total.errors,
        total.ok + total.errors,
    );
    Ok(total.errors)
}

fn target(url: &str) -> Result<Target> {
    let base = url.trim_end_matches('/').to_owned();
    let authority = base
        .strip_prefix("http://")
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or("URLs must look like http://HOST:PORT")?
        .to_owned();
    Ok(Target { authority, base })
}

async fn open(t: &Target) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(&t.authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn status_of(
    sender: &mut SendRequest<Full<Bytes>>,
    t: &Target,
    method: &str,
    path: &str,
    proof: &(hyper::header::HeaderName, String),
) -> Result<u16> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, &t.authority)
        .header(ORIGIN, &t.base)
        .header(proof.0.clone(), &proof.1)
        .body(Full::new(Bytes::new()))?;
    sender.ready().await?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    res.into_body().collect().await?;
    Ok(status)
}

/// Revocation on one node to refusal on the other (see the module docs).
async fn propagate(args: &Args) -> Result<u64> {
    let a = target(args.req("url"))?;
    let b = target(args.req("other"))?;
    let logout = args.req("logout").to_owned();
    let rounds: usize = args.num("rounds", 20);
    let limit = Duration::from_secs_f64(args.num("limit", 2.0));
    let mut times = Vec::new();
    let mut stale = 0u64;
    for round in 0..rounds {
        let mut on_a = open(&a).await?;
        let mut on_b = open(&b).await?;
        let proof = login(&mut on_a, &a, &format!("propagate-{round}")).await?;
        for _ in 0..2 {
            let s = status_of(&mut on_b, &b, "GET", "/me", &proof).await?;
            if s != 200 {
                return Err(format!("GET /me on the other node: {s}").into());
            }
        }
        let s = status_of(&mut on_a, &a, "POST", &logout, &proof).await?;
        if !(200..300).contains(&s) {
            return Err(format!("POST {logout}: {s}").into());
        }
        let start = Instant::now();
        loop {
            if status_of(&mut on_b, &b, "GET", "/me", &proof).await? != 200 {
                times.push(start.elapsed());
                break;
            }
            if start.elapsed() > limit {
                stale += 1;
                break;
            }
        }
    }
    times.sort();
    let at = |q: f64| -> u128 {
        if times.is_empty() {
            return 0;
        }
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[i].as_micros()
    };
    println!(
        "propagate_p50_us={} propagate_p99_us={} propagate_max_us={} stale={stale} rounds={rounds}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(0)
}

/// One connection: sign in, then `GET /me` until `end`.
async fn connection(n: usize, t: Arc<Target>, from: Instant, end: Instant) -> Result<Tally> {
    let stream = TcpStream::connect(&t.authority)
        .await
        .map_err(|e| format!("connect {}: {e}", t.authority))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    // Drives the socket; ends when `sender` is dropped or the server closes.
    tokio::spawn(conn);

    let user = format!("bench-{n}");
    let (name, value) = login(&mut sender, &t, &user).await?;
    // Built once; clones share the bytes.
    let value = hyper::header::HeaderValue::from_str(&value)?;
    let host = hyper::header::HeaderValue::from_str(&t.authority)?;
    let needle = format!("\"{user}\"");

    let mut tally = Tally::new();
    while Instant::now() < end {
        let req = Request::get("/me")
            .header(HOST, host.clone())
            .header(name.clone(), value.clone())
            .body(Full::new(Bytes::new()))?;
        sender.ready().await?;
        let started = Instant::now();
        let res = sender.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if started < from {
            continue; // warm-up
        }
        if status == 200 && contains(&body, needle.as_bytes()) {
            tally.ok += 1;
            tally.hist.saturating_record(micros.max(1));
        } else {
            tally.error(format!(
                "GET /me for {user}: status {status}, body {:?}",
                String::from_utf8_lossy(&body)
            ));
        }
    }
    Ok(tally)
}

/// `POST /login`; returns the header that proves the session: `Cookie` with every cookie the reply set,
/// else `Authorization: Bearer <token>` from the JSON reply.
async fn login(
    sender: &mut SendRequest<Full<Bytes>>,
    t: &Target,
    user: &str,
) -> Result<(hyper::header::HeaderName, String)> {
    let body = serde_json::json!({ "user": user }).to_string();
    let req = Request::post("/login")
        .header(HOST, &t.authority)
        .header(CONTENT_TYPE, "application/json")
        .header(ORIGIN, &t.base)
        .body(Full::new(Bytes::from(body)))?;
    sender.ready().await?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    // `name=value` of each Set-Cookie; attributes (Path, Max-Age, ...) are not needed here.
    let cookies: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|pair| pair.trim().to_owned())
        .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
        .collect();
    let body = res.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!(
            "POST /login for {user}: status {status}, body {:?}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    if !cookies.is_empty() {
        return Ok((COOKIE, cookies.join("; ")));
    }
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token")?.as_str().map(str::to_owned));
    match token {
        Some(token) => Ok((AUTHORIZATION, format!("Bearer {token}"))),
        None => Err(
            format!("POST /login for {user}: no cookie set and no \"token\" in the reply").into(),
        ),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
