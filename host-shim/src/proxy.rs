//! One downstream request: into the engine, decision carried out (local answer, or forward upstream).

use std::io::Read;
use std::time::{Duration, Instant};

use portcullis_core::{Decision, HeaderEdits, Outcome, Request};
use rand_core::OsRng;

use crate::callout;
use crate::Shared;

const MAX_REQUEST_BODY: u64 = 16 << 20;
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
];

/// Serves one request, then hands its outcome to the core: the request metrics and the log line.
pub fn handle(shared: &Shared, req: tiny_http::Request) {
    let start = Instant::now();
    shared.vm().request_started();
    let (outcome, status) = serve(shared, req);
    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Some(line) = shared
        .engine
        .finish_request(&outcome, status, us, &mut shared.vm())
    {
        eprintln!("portcullis: {}", line.text);
    }
}

/// Carries out the engine's decisions for one request; returns what it decided and the status sent.
fn serve(shared: &Shared, mut req: tiny_http::Request) -> (Outcome, u16) {
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), req.method().as_str().to_string()),
        (":path".into(), req.url().to_string()),
        (":scheme".into(), "http".into()),
    ];
    for h in req.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        if name == "host" {
            headers.push((":authority".into(), h.value.as_str().to_string()));
        }
        headers.push((name, h.value.as_str().to_string()));
    }
    let engine = &shared.engine;
    let now = callout::now();
    let raw = portcullis_core::request::raw_headers(&headers);
    let request = Request::from_headers(&raw);
    let mut decision = engine.handle_request(&request, now, &mut OsRng, &mut shared.vm());
    let mut outcome = Outcome::begin(&request, &decision);
    let mut read_body = Vec::new();
    loop {
        outcome.update(&decision);
        match decision {
            Decision::Claim { key, mut pending } => {
                let now = callout::now();
                let written = shared.claim(&key, &mut pending, now);
                decision = engine.handle_claim(pending, written, now, &mut shared.vm());
            }
            Decision::Wait { .. } => {
                // Another request is renewing this session's token: ask again shortly. The engine
                // gives up on a refresh that outlives its callout timeout, so this ends.
                std::thread::sleep(Duration::from_millis(10));
                let mut again = request;
                again.body = (!read_body.is_empty()).then_some(&read_body[..]);
                decision =
                    engine.handle_request(&again, callout::now(), &mut OsRng, &mut shared.vm());
            }
            Decision::ReadBody { limit } => {
                // At most `limit + 1` bytes: enough for the engine to tell a body that is too large.
                let limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
                if req
                    .as_reader()
                    .take(limit)
                    .read_to_end(&mut read_body)
                    .is_err()
                {
                    read_body.clear();
                }
                let mut with_body = request;
                with_body.body = Some(&read_body);
                decision = engine.handle_request(&with_body, now, &mut OsRng, &mut shared.vm());
            }
            Decision::Callout { callout, pending } => {
                // The callout is made without the lock; the reply goes back to the core with it.
                let sent = Instant::now();
                let reply = shared.clusters.send(&callout);
                let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let mut vm = shared.vm();
                vm.callout_finished(callout.endpoint, reply.status, us);
                decision = engine.handle_callout_response(
                    pending,
                    reply.as_response(),
                    callout::now(),
                    &mut OsRng,
                    &mut vm,
                );
                shared.flush_writes(&mut vm);
            }
            Decision::Respond {
                status,
                headers,
                body,
                ..
            } => {
                let mut resp = tiny_http::Response::from_data(body).with_status_code(status);
                for (n, v) in &headers {
                    if let Ok(h) = tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()) {
                        resp.add_header(h);
                    }
                }
                let _ = req.respond(resp);
                return (outcome, status);
            }
            Decision::Forward {
                request: edits,
                response,
                ..
            } => {
                let mut body = Vec::new();
                if req
                    .as_reader()
                    .take(MAX_REQUEST_BODY)
                    .read_to_end(&mut body)
                    .is_err()
                {
                    let _ = req.respond(
                        tiny_http::Response::from_string("bad request body").with_status_code(400),
                    );
                    return (outcome, 400);
                }
                let mut edited = edits.apply(&headers);
                edited.retain(|(n, _)| !n.starts_with(':'));
                let status = forward(shared, req, &edited, body, &response);
                return (outcome, status);
            }
        }
    }
}

fn forward(
    shared: &Shared,
    req: tiny_http::Request,
    headers: &[(String, String)],
    body: Vec<u8>,
    response: &HeaderEdits,
) -> u16 {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(30))
        .build();
    let mut up = agent.request(
        req.method().as_str(),
        &format!("{}{}", shared.upstream, req.url()),
    );
    for (n, v) in headers {
        if !HOP_BY_HOP.contains(&n.as_str()) {
            up = up.set(n, v);
        }
    }
    let resp = match callout::send(up, &body) {
        Ok(r) => r,
        Err(t) => {
            eprintln!("portcullis: upstream unreachable: {t}");
            let _ = req.respond(
                tiny_http::Response::from_string("upstream unreachable\n").with_status_code(502),
            );
            return 502;
        }
    };
    let status = resp.status();
    let mut upstream_headers: Vec<(String, String)> = Vec::new();
    for name in resp.headers_names() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        for v in resp.all(&name) {
            upstream_headers.push((name.clone(), v.to_string()));
        }
    }
    // The same edit semantics as the Envoy filter: the core's one `apply`.
    let out_headers = response.apply(&upstream_headers);
    let mut data = Vec::new();
    let _ = resp
        .into_reader()
        .take(MAX_REQUEST_BODY)
        .read_to_end(&mut data);
    let mut r = tiny_http::Response::from_data(data).with_status_code(status);
    for (n, v) in &out_headers {
        if let Ok(h) = tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()) {
            r.add_header(h);
        }
    }
    let _ = req.respond(r);
    status
}
