//! The root context: configuration, the per-VM shared state, and the discovery/JWKS refresh timer.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use portcullis_core::{Engine, RootPending, UnixTime, VmState, SHARED_INIT};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::Status;
use proxy_wasm::types::{ContextType, LogLevel};

use crate::callout::read_reply;
use crate::host;
use crate::http::Http;
use portcullis_core::metrics::{IdpEndpoint, MetricKind, MetricUpdate};
use portcullis_core::CalloutReply;

/// The first tick after a configuration, which starts discovery: soon, so that a worker serves logins
/// a few milliseconds after it starts rather than a whole `TICK_UNTIL_READY` later.
const TICK_FIRST: Duration = Duration::from_millis(5);
const TICK_UNTIL_READY: Duration = Duration::from_millis(200);
const TICK_READY: Duration = Duration::from_secs(1);
/// Largest plugin configuration read (a real one is a few KB).
const MAX_CONFIG_BYTES: usize = 1 << 20;

/// State shared by the root and every HTTP context of this VM (VMs share no memory).
pub struct Vm {
    /// The current engine snapshot; `None` until a valid configuration arrives.
    pub engine: RefCell<Option<Rc<Engine>>>,
    /// The core's per-VM state (session cache, issuers' keys, refresh schedule): only the core changes it.
    pub state: RefCell<VmState>,
    /// The clock as read at the last tick. The core works in whole seconds and ticks come every second,
    /// so requests read this instead of making a host call each.
    clock: Cell<Option<UnixTime>>,
    /// Decisions the core never saw (no configuration yet), by reason code, until the next flush.
    unconfigured: RefCell<BTreeMap<&'static str, u64>>,
    /// Each stat's host id once defined, by name.
    metric_ids: RefCell<BTreeMap<String, u32>>,
    /// Requests parked on a `Decision::Wait`, by its key: their context ids.
    pub parked: RefCell<BTreeMap<u64, Vec<u32>>>,
    /// Response edits decided for a parked request after it resumed, by context id.
    pub late_response: RefCell<BTreeMap<u32, portcullis_core::HeaderEdits>>,
    /// The final decision of a parked request after it resumed, by context id (for its `on_log`).
    pub late_outcome: RefCell<BTreeMap<u32, portcullis_core::Outcome>>,
}

impl Vm {
    /// The current time: the last tick's reading, or the host clock before the first tick.
    pub fn now(&self) -> Result<UnixTime, Status> {
        match self.clock.get() {
            Some(t) => Ok(t),
            None => host::now(),
        }
    }

    /// Counts an answer the core never saw (no configuration yet). The core counts its own decisions
    /// in `VmState`; [`Vm::flush_metrics`] moves both to the host on the next tick, keeping a host call
    /// off every request.
    pub fn count(&self, code: &'static str) {
        if let Ok(mut m) = self.unconfigured.try_borrow_mut() {
            *m.entry(code).or_insert(0) += 1;
        }
    }

    /// Exchanges back-channel logouts with the other workers through the host's shared data: takes in
    /// theirs, publishes ours (compare-and-swap, retried on a conflict).
    pub fn sync_revocations(&self, engine: &Engine) {
        let Ok(now) = self.now() else {
            return;
        };
        let key = engine.revocations_store_key();
        for _ in 0..4 {
            let (value, cas) = match host::shared_get(&key) {
                Ok(v) => v,
                Err(s) => {
                    host::log(LogLevel::Error, &format!("cannot read shared data: {s:?}"));
                    return;
                }
            };
            if value.is_none() && cas == 0 {
                // Missing: a compare-and-swap write would be unconditional. Create it, read again.
                let _ = host::shared_set(&key, SHARED_INIT, 0);
                continue;
            }
            let Ok(mut state) = self.state.try_borrow_mut() else {
                return;
            };
            let Some(bytes) = state.sync_revocations(value.as_deref(), cas, now) else {
                return;
            };
            match host::shared_set(&key, &bytes, cas) {
                Ok(()) => {
                    state.revocations_published();
                    return;
                }
                Err(Status::CasMismatch) => {}
                Err(s) => {
                    host::log(LogLevel::Error, &format!("cannot write shared data: {s:?}"));
                    return;
                }
            }
        }
    }

    /// Writes what the core asked to publish to the host's shared data (a refresh's outcome).
    pub fn flush_shared_writes(&self) {
        let writes = match self.state.try_borrow_mut() {
            Ok(mut state) => state.take_shared_writes(),
            Err(_) => return,
        };
        for (key, value) in writes {
            if let Err(s) = host::shared_set(&key, &value, 0) {
                host::log(LogLevel::Error, &format!("cannot write shared data: {s:?}"));
            }
        }
    }

    /// Reads the shared-data slots requests here wait on (a refresh in another worker) and hands them
    /// to the core.
    pub fn poll_watched(&self, engine: &Engine) {
        let Ok(now) = self.now() else {
            return;
        };
        let slots = match self.state.try_borrow() {
            Ok(state) => state.watched_slots(),
            Err(_) => return,
        };
        for slot in slots {
            let value = host::shared_get(&slot).ok().and_then(|(v, _)| v);
            if let Ok(mut state) = self.state.try_borrow_mut() {
                engine.handle_watched(&slot, value.as_deref(), now, &mut state);
            }
        }
    }

    /// Moves what the core counted since the last tick (and the unconfigured answers) to the host's
    /// stats: Envoy's /stats prefixes them `wasmcustom.`, and its `stats_tags` turn the `.label.value`
    /// segments into Prometheus labels.
    pub fn flush_metrics(&self) {
        let mut updates = match self.state.try_borrow_mut() {
            Ok(mut state) => state.take_metrics(),
            Err(_) => return,
        };
        if let Ok(mut m) = self.unconfigured.try_borrow_mut() {
            updates.extend(
                std::mem::take(&mut *m)
                    .into_iter()
                    .map(|(code, n)| MetricUpdate {
                        name: format!("portcullis_decisions_total.reason.{code}"),
                        kind: MetricKind::Counter,
                        delta: i64::try_from(n).unwrap_or(i64::MAX),
                    }),
            );
        }
        let Ok(mut ids) = self.metric_ids.try_borrow_mut() else {
            return;
        };
        for u in updates {
            let id = match ids.get(&u.name) {
                Some(id) => *id,
                None => match host::define_metric(u.kind, &u.name) {
                    Some(id) => *ids.entry(u.name).or_insert(id),
                    None => continue,
                },
            };
            host::add(id, u.delta);
        }
    }
}

/// Creates the shared-data keys the configuration uses that do not exist yet, before this VM serves.
/// Envoy's compare-and-swap write to a missing key is unconditional: two workers' first claims on one
/// would both succeed. The main thread's VM is configured before any worker serves, so from then on
/// every claim is a real compare-and-swap.
fn create_shared_keys(engine: &Engine) {
    for key in engine.shared_keys() {
        if let Ok((None, 0)) = host::shared_get(&key) {
            if let Err(s) = host::shared_set(&key, SHARED_INIT, 0) {
                host::log(
                    LogLevel::Error,
                    &format!("cannot create shared data: {s:?}"),
                );
                return;
            }
        }
    }
}

/// The root context.
pub struct Root {
    id: u32,
    vm: Rc<Vm>,
    /// Root callouts in flight by token: the flow, the endpoint and when it was sent (ns).
    in_flight: BTreeMap<u32, (RootPending, IdpEndpoint, u64)>,
    /// The tick period last asked of the host.
    tick: Duration,
}

impl Root {
    /// A root with no configuration yet.
    pub fn new(id: u32) -> Self {
        Root {
            id,
            vm: Rc::new(Vm {
                engine: RefCell::new(None),
                state: RefCell::new(VmState::default()),
                unconfigured: RefCell::new(BTreeMap::new()),
                metric_ids: RefCell::new(BTreeMap::new()),
                clock: Cell::new(None),
                parked: RefCell::new(BTreeMap::new()),
                late_response: RefCell::new(BTreeMap::new()),
                late_outcome: RefCell::new(BTreeMap::new()),
            }),
            in_flight: BTreeMap::new(),
            tick: TICK_FIRST,
        }
    }

    fn engine(&self) -> Option<Rc<Engine>> {
        self.vm.engine.try_borrow().ok().and_then(|e| e.clone())
    }

    fn send(&mut self, callout: portcullis_core::Callout, pending: RootPending) {
        match host::dispatch(&callout) {
            Ok(token) => {
                let sent = host::now_nanos().unwrap_or(0);
                self.in_flight
                    .insert(token, (pending, callout.endpoint, sent));
            }
            Err(status) => {
                host::log(
                    LogLevel::Error,
                    &format!(
                        "cannot call the IdP through cluster {:?} ({status:?}); is it defined?",
                        callout.cluster
                    ),
                );
                if let Ok(mut state) = self.vm.state.try_borrow_mut() {
                    state.callout_finished(callout.endpoint, None, 0);
                }
                self.finish(pending, CalloutReply::failed());
            }
        }
    }

    fn finish(&mut self, pending: RootPending, reply: CalloutReply) {
        let (Some(engine), Ok(now)) = (self.engine(), host::now()) else {
            return;
        };
        let Ok(mut state) = self.vm.state.try_borrow_mut() else {
            return;
        };
        let step = engine.handle_root_response(pending, reply.as_response(), now, &mut state);
        drop(state);
        if let Some(line) = step.log {
            let level = if line.warn {
                LogLevel::Warn
            } else {
                LogLevel::Info
            };
            host::log(level, &line.text);
        }
        if let Some((callout, pending)) = step.next {
            self.send(callout, pending);
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some((pending, endpoint, sent)) = self.in_flight.remove(&token_id) {
            let reply = read_reply(num_headers, body_size);
            let us = host::now_nanos().unwrap_or(sent).saturating_sub(sent) / 1000;
            if let Ok(mut state) = self.vm.state.try_borrow_mut() {
                state.callout_finished(endpoint, reply.status, us);
            }
            self.finish(pending, reply);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        // What the old configuration's state counted reaches the host before that state is replaced.
        self.vm.flush_metrics();
        let bytes = host::plugin_configuration(MAX_CONFIG_BYTES).unwrap_or_default();
        match Engine::from_json(&bytes) {
            Ok(engine) => {
                create_shared_keys(&engine);
                if let Ok(mut state) = self.vm.state.try_borrow_mut() {
                    *state = engine.new_vm();
                }
                if let Ok(mut slot) = self.vm.engine.try_borrow_mut() {
                    *slot = Some(Rc::new(engine));
                }
                self.in_flight.clear();
                self.tick = TICK_FIRST;
                host::set_tick_period(TICK_FIRST);
                true
            }
            Err(e) => {
                // Serve nothing rather than let traffic through: HTTP contexts answer 503 without an engine.
                if let Ok(mut slot) = self.vm.engine.try_borrow_mut() {
                    *slot = None;
                }
                host::log(LogLevel::Error, &format!("{e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.vm.flush_metrics();
        self.vm.clock.set(host::now().ok());
        let (Some(engine), Ok(now)) = (self.engine(), host::now()) else {
            return;
        };
        let due = match self.vm.state.try_borrow_mut() {
            Ok(mut state) => {
                let period = if state.is_ready() {
                    TICK_READY
                } else {
                    TICK_UNTIL_READY
                };
                if period != self.tick {
                    self.tick = period;
                    host::set_tick_period(period);
                }
                engine.handle_timeout(now, &mut state)
            }
            Err(_) => Vec::new(),
        };
        for (callout, pending) in due {
            self.send(callout, pending);
        }
        self.vm.sync_revocations(&engine);
        self.vm.poll_watched(&engine);
        crate::http::wake_parked(&self.vm, self.id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.vm.clone(), context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
