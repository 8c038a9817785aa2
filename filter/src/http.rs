//! The HTTP context: one request, fed to the engine; its decision carried out.

use std::rc::Rc;

use portcullis_core::metrics::IdpEndpoint;
use portcullis_core::request::parse_header_map;
use portcullis_core::{
    Decision, Engine, HeaderEdits, Outcome, Pending, Reason, Request, SHARED_INIT,
};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType, Status};

use crate::callout::read_reply;
use portcullis_core::CalloutReply;
use rand_core::OsRng;

use crate::host;
use crate::root::Vm;

/// Per-request state.
pub struct Http {
    vm: Rc<Vm>,
    /// This request's context id (to be resumed by another request's callout).
    id: u32,
    /// The engine snapshot this request started with, and its paused flow.
    waiting: Option<(Rc<Engine>, Pending)>,
    /// Response edits to apply when the upstream answers.
    response: HeaderEdits,
    /// What the core decided so far, kept for the metrics and the log line at the end.
    outcome: Option<Outcome>,
    /// When the request arrived (host clock, ns), once counted as started.
    started_ns: Option<u64>,
    /// The status sent downstream (0 until known).
    status: u16,
    /// The callout in flight: its endpoint and when it was sent (ns).
    callout: Option<(IdpEndpoint, u64)>,
    /// The engine asked for the request body, at most this many bytes.
    body_limit: Option<usize>,
    /// The request ended with its headers (there is no body to wait for).
    headers_only: bool,
    /// The request was let through (its body may follow it upstream).
    forwarded: bool,
}

impl Http {
    pub fn new(vm: Rc<Vm>, id: u32) -> Self {
        Http {
            vm,
            id,
            waiting: None,
            response: HeaderEdits::default(),
            outcome: None,
            started_ns: None,
            status: 0,
            callout: None,
            body_limit: None,
            headers_only: false,
            forwarded: false,
        }
    }

    /// Reads the request headers (and `body`, once read), asks the engine, carries out its decision.
    fn decide(&mut self, body: Option<&[u8]>, resume: bool) -> Action {
        let engine = self.vm.engine.try_borrow().ok().and_then(|e| e.clone());
        let Some(engine) = engine else {
            self.vm.count(Reason::ProviderNotReady.code());
            let _ = host::send_response(
                503,
                &[("content-type".into(), "text/plain".into())],
                b"not configured\n",
            );
            return Action::Pause;
        };
        let buf = match host::request_headers() {
            Ok(b) => b,
            Err(s) => return self.fail(500, "cannot read request headers", s),
        };
        let Some(headers) = parse_header_map(&buf) else {
            return self.fail(500, "cannot parse request headers", Status::ParseFailure);
        };
        let now = match self.vm.now() {
            Ok(t) => t,
            Err(s) => return self.fail(500, "cannot read the clock", s),
        };
        let mut req = Request::from_headers(&headers);
        req.body = body;
        let (decision, publish) = match self.vm.state.try_borrow_mut() {
            Ok(mut state) => {
                let d = engine.handle_request(&req, now, &mut OsRng, &mut state);
                (d, state.has_unpublished_revocations())
            }
            // Unreachable (one thread per VM, no callback re-enters), but never a panic.
            Err(_) => (
                engine.handle_request(&req, now, &mut OsRng, &mut engine.new_vm()),
                false,
            ),
        };
        if publish {
            // A back-channel logout: the other workers learn of it now, not at their next tick.
            self.vm.sync_revocations(&engine);
        }
        match &mut self.outcome {
            Some(o) => o.update(&decision),
            None => self.outcome = Some(Outcome::begin(&req, &decision)),
        }
        self.carry_out(engine, decision, resume)
    }

    /// Carries out a decision. Returns the action for a headers callback (`resume` says whether a paused
    /// request must be resumed explicitly instead).
    fn carry_out(&mut self, engine: Rc<Engine>, decision: Decision, resume: bool) -> Action {
        match decision {
            Decision::Forward {
                request, response, ..
            } => {
                if let Err(s) = host::apply_edits(MapType::HttpRequestHeaders, &request) {
                    // Never forward a request whose identity headers could not be set or stripped.
                    return self.fail(500, "cannot edit request headers", s);
                }
                self.response = response;
                self.forwarded = true;
                if resume {
                    if let Err(s) = host::resume() {
                        host::log(LogLevel::Error, &format!("resume failed: {s:?}"));
                    }
                }
                Action::Continue
            }
            Decision::Respond {
                status,
                headers,
                body,
                ..
            } => {
                // Its log line is written when the request ends (`on_log`), with the latency.
                self.status = status;
                if let Err(s) = host::send_response(status, &headers, &body) {
                    host::log(LogLevel::Error, &format!("cannot send response: {s:?}"));
                }
                Action::Pause
            }
            Decision::Claim { key, pending } => self.claim(engine, &key, pending, resume),
            Decision::Wait { key } => {
                if let Ok(mut parked) = self.vm.parked.try_borrow_mut() {
                    parked.entry(key).or_default().push(self.id);
                }
                Action::Pause
            }
            Decision::ReadBody { limit } => {
                if self.headers_only {
                    return self.decide(Some(&[]), resume);
                }
                // Envoy buffers the body while `on_http_request_body` pauses.
                self.body_limit = Some(limit);
                Action::Pause
            }
            Decision::Callout { callout, pending } => match host::dispatch(&callout) {
                Ok(_token) => {
                    self.waiting = Some((engine, pending));
                    self.callout = Some((callout.endpoint, host::now_nanos().unwrap_or(0)));
                    Action::Pause
                }
                Err(s) => {
                    host::log(
                        LogLevel::Error,
                        &format!(
                            "cannot call the IdP through cluster {:?} ({s:?})",
                            callout.cluster
                        ),
                    );
                    if let Ok(mut state) = self.vm.state.try_borrow_mut() {
                        state.callout_finished(callout.endpoint, None, 0);
                    }
                    let (engine, decision) =
                        self.continue_flow(engine, pending, CalloutReply::failed());
                    self.carry_out(engine, decision, resume)
                }
            },
        }
    }

    fn continue_flow(
        &mut self,
        engine: Rc<Engine>,
        pending: Pending,
        reply: CalloutReply,
    ) -> (Rc<Engine>, Decision) {
        let now = self.vm.now().unwrap_or_default();
        let decision = match self.vm.state.try_borrow_mut() {
            Ok(mut state) => engine.handle_callout_response(
                pending,
                reply.as_response(),
                now,
                &mut OsRng,
                &mut state,
            ),
            // Unreachable (one thread per VM, no callback re-enters), but never a panic.
            Err(_) => engine.handle_callout_response(
                pending,
                reply.as_response(),
                now,
                &mut OsRng,
                &mut engine.new_vm(),
            ),
        };
        if let Some(o) = &mut self.outcome {
            o.update(&decision);
        }
        (engine, decision)
    }

    fn wake_parked(&self) {
        wake_parked(&self.vm, self.id);
    }

    /// Claims a refresh in the host's shared data for the core (`Decision::Claim`), then carries out
    /// what the core decides.
    fn claim(
        &mut self,
        engine: Rc<Engine>,
        key: &str,
        mut pending: Pending,
        resume: bool,
    ) -> Action {
        let now = self.vm.now().unwrap_or_default();
        let mut written = false;
        for _ in 0..3 {
            let (value, cas) = match host::shared_get(key) {
                Ok(v) => v,
                Err(_) => break,
            };
            if value.is_none() && cas == 0 {
                // Missing: a compare-and-swap write would be unconditional. Create it, read again.
                let _ = host::shared_set(key, SHARED_INIT, 0);
                continue;
            }
            let Some(bytes) = engine.claim_step(&mut pending, value.as_deref(), now) else {
                break;
            };
            match host::shared_set(key, &bytes, cas) {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(Status::CasMismatch) => {}
                Err(_) => break,
            }
        }
        let decision = match self.vm.state.try_borrow_mut() {
            Ok(mut state) => engine.handle_claim(pending, written, now, &mut state),
            Err(_) => engine.handle_claim(pending, written, now, &mut engine.new_vm()),
        };
        self.carry_out(engine, decision, resume)
    }

    fn fail(&mut self, status: u16, what: &str, s: Status) -> Action {
        let label = self.outcome.as_ref().and_then(|o| o.label.as_deref());
        host::log(
            LogLevel::Error,
            &format!("{status} {what} ({s:?}) {}", label.unwrap_or("")),
        );
        self.status = status;
        let _ = host::send_response(
            status,
            &[("content-type".into(), "text/plain".into())],
            b"internal error\n",
        );
        Action::Pause
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some((engine, pending)) = self.waiting.take() else {
            return;
        };
        let reply = read_reply(num_headers, body_size);
        if let Some((endpoint, sent)) = self.callout.take() {
            let us = host::now_nanos().unwrap_or(sent).saturating_sub(sent) / 1000;
            if let Ok(mut state) = self.vm.state.try_borrow_mut() {
                state.callout_finished(endpoint, reply.status, us);
            }
        }
        let (engine, decision) = self.continue_flow(engine, pending, reply);
        self.vm.flush_shared_writes();
        let _ = self.carry_out(engine, decision, true);
        self.wake_parked();
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.headers_only = end_of_stream;
        // Counted (in flight, then its metrics at `on_log`) only where a configuration can finish it.
        let configured = self.vm.engine.try_borrow().is_ok_and(|e| e.is_some());
        if let (true, Ok(ns), Ok(mut state)) = (
            configured,
            host::now_nanos(),
            self.vm.state.try_borrow_mut(),
        ) {
            state.request_started();
            self.started_ns = Some(ns);
        }
        self.decide(None, false)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.forwarded {
            self.forwarded = self
                .vm
                .late_response
                .try_borrow()
                .is_ok_and(|l| l.contains_key(&self.id));
        }
        let Some(limit) = self.body_limit else {
            // Headers paused (a callout, a wait): hold the body too, so nothing reaches the upstream
            // before the decision. Once forwarded, it flows.
            return if self.forwarded {
                Action::Continue
            } else {
                Action::Pause
            };
        };
        if !end_of_stream && body_size <= limit {
            return Action::Pause;
        }
        self.body_limit = None;
        // At most `limit + 1` bytes: enough for the engine to tell a body that is too large.
        let body = match host::request_body(body_size.min(limit + 1)) {
            Ok(b) => b,
            Err(s) => return self.fail(500, "cannot read the request body", s),
        };
        self.decide(Some(&body), false)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Every response passes here, the upstream's, Envoy's own and our local replies alike. Reading
        // the status is a host call that returns data, about 12k instructions (an eighth of what a
        // whole request costs Envoy): the core says when it is needed.
        let read = (self.vm.engine.try_borrow().ok())
            .and_then(|e| e.as_ref().map(|e| e.needs_response_status(self.status)))
            .unwrap_or(false);
        if read {
            if let Some(status) = host::response_status() {
                self.status = status;
            }
        }
        if let Some(late) = self
            .vm
            .late_response
            .try_borrow_mut()
            .ok()
            .and_then(|mut l| l.remove(&self.id))
        {
            self.response = late;
        }
        if !self.response.is_empty() {
            if let Err(s) = host::apply_edits(MapType::HttpResponseHeaders, &self.response) {
                host::log(
                    LogLevel::Error,
                    &format!("cannot edit response headers: {s:?}"),
                );
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The request is over: its metrics and, unless it was a routine pass, its log line.
        let Some(started) = self.started_ns.take() else {
            return;
        };
        let us = host::now_nanos().unwrap_or(started).saturating_sub(started) / 1000;
        let engine = self.vm.engine.try_borrow().ok().and_then(|e| e.clone());
        let (Some(engine), Ok(mut state)) = (engine, self.vm.state.try_borrow_mut()) else {
            return;
        };
        let late = self
            .vm
            .late_outcome
            .try_borrow_mut()
            .ok()
            .and_then(|mut l| l.remove(&self.id));
        let outcome = late.or_else(|| self.outcome.take()).unwrap_or_default();
        if let Some(line) = engine.finish_request(&outcome, self.status, us, &mut state) {
            let level = if line.warn {
                LogLevel::Warn
            } else {
                LogLevel::Info
            };
            host::log(level, &line.text);
        }
    }
}

/// Re-submits the requests parked on the waits the core says are over (a refresh ended here or in
/// another worker), each in its own context, then makes context `back` current again.
pub fn wake_parked(vm: &Rc<Vm>, back: u32) {
    let keys = match vm.state.try_borrow_mut() {
        Ok(mut state) => state.take_woken(),
        Err(_) => return,
    };
    if keys.is_empty() {
        return;
    }
    for key in keys {
        let ids = vm
            .parked
            .try_borrow_mut()
            .ok()
            .and_then(|mut p| p.remove(&key))
            .unwrap_or_default();
        for id in ids {
            // A context that is gone (client went away) is skipped.
            if host::set_effective_context(id).is_err() {
                continue;
            }
            let mut parked = Http::new(vm.clone(), id);
            let _ = parked.decide(None, true);
            if let (Some(o), Ok(mut late)) =
                (parked.outcome.take(), vm.late_outcome.try_borrow_mut())
            {
                // The context Envoy keeps for this request learns its final decision at `on_log`.
                late.insert(id, o);
            }
            if parked.forwarded {
                // Its response edits, and the mark that its body may now flow.
                if let Ok(mut late) = vm.late_response.try_borrow_mut() {
                    late.insert(id, std::mem::take(&mut parked.response));
                }
            }
        }
    }
    let _ = host::set_effective_context(back);
}
