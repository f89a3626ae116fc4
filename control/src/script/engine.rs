//! The script thread: one QuickJS runtime and context, the load sequence
//! (script-contract.md §2), the command loop with the scheduler and timer
//! services (§5), and every callback of §9.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsfu_route::{HangupReason, PluginSessionId};
use rquickjs::context::EvalOptions;
use rquickjs::function::Args;
use rquickjs::{Coerced, Context, Ctx, Function, Object, Persistent, Runtime, Value};
use serde_json::{Map, Value as Json};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::convert::{c_int, latin1_string};
use super::extra::ExtraFunction;
use super::host::{Host, HostRef, Session};
use super::{Callbacks, ScriptLoadError};
use crate::config::{RecordingConfig, ScriptConfig, ScriptLimits};
use crate::plugin::{
    CoreRef, HandleRef, JsepForPlugin, MessageReply, PluginError, PluginInfo, Teardown,
};

const PRELUDE: &str = include_str!("prelude.js");

/// The mandatory callbacks (§2 step 5).
const MANDATORY: &[&str] = &[
    "init",
    "destroy",
    "resumeScheduler",
    "createSession",
    "destroySession",
    "querySession",
    "handleMessage",
    "setupMedia",
    "hangupMedia",
];

/// The generic reason of every failed `message` (decision 23).
const DUKTAPE_ERROR: &str = "Duktape error";

/// A request for the script thread.
#[derive(Debug)]
pub(crate) enum Command {
    CreateSession {
        handle: HandleRef,
        reply: oneshot::Sender<Result<PluginSessionId, PluginError>>,
    },
    HandleMessage {
        id: PluginSessionId,
        transaction: String,
        body: String,
        jsep: Option<JsepForPlugin>,
        reply: oneshot::Sender<MessageReply>,
    },
    DestroySession {
        id: PluginSessionId,
        teardown: Teardown,
    },
    SetupMedia {
        id: PluginSessionId,
        reply: oneshot::Sender<()>,
    },
    HangupMedia {
        id: PluginSessionId,
        reason: HangupReason,
    },
    QuerySession {
        id: PluginSessionId,
        reply: oneshot::Sender<Option<Map<String, Json>>>,
    },
    AdminMessage {
        request: Option<String>,
        reply: oneshot::Sender<Json>,
    },
    IncomingRtp {
        id: PluginSessionId,
        video: bool,
        rtcp: bool,
        packet: Vec<u8>,
    },
    IncomingData {
        id: PluginSessionId,
        text: bool,
        data: Vec<u8>,
        label: String,
        protocol: String,
    },
    DataReady {
        id: PluginSessionId,
    },
    SlowLink {
        id: PluginSessionId,
        uplink: bool,
        video: bool,
    },
    LayerChanged {
        id: PluginSessionId,
        temporal: bool,
        layer: u8,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What the thread reports once the script is loaded.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) info: PluginInfo,
    pub(crate) callbacks: Callbacks,
}

/// Everything the thread needs to start.
pub(crate) struct Setup {
    pub(crate) config: ScriptConfig,
    pub(crate) limits: ScriptLimits,
    pub(crate) recording: RecordingConfig,
    pub(crate) core: CoreRef,
    pub(crate) extras: Vec<ExtraFunction>,
}

/// The per-entry time budget checked by the interrupt handler.
#[derive(Clone)]
struct Budget {
    base: Instant,
    /// Deadline in nanoseconds since `base`, plus one; 0 = none.
    deadline: Arc<AtomicU64>,
    fired: Arc<AtomicBool>,
}

impl Budget {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            deadline: Arc::new(AtomicU64::new(0)),
            fired: Arc::new(AtomicBool::new(false)),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn arm(&self, limit: Duration) {
        let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        self.fired.store(false, Ordering::Relaxed);
        self.deadline.store(
            self.now().saturating_add(limit).saturating_add(1),
            Ordering::Relaxed,
        );
    }

    fn disarm(&self) -> bool {
        self.deadline.store(0, Ordering::Relaxed);
        self.fired.swap(false, Ordering::Relaxed)
    }

    fn expired(&self) -> bool {
        let d = self.deadline.load(Ordering::Relaxed);
        d != 0 && self.now() >= d
    }

    fn handler(&self) -> Box<dyn FnMut() -> bool + Send + 'static> {
        let budget = self.clone();
        Box::new(move || {
            if budget.expired() {
                budget.fired.store(true, Ordering::Relaxed);
                true
            } else {
                false
            }
        })
    }
}

/// The loaded engine, owned by the script thread.
struct Engine {
    runtime: Runtime,
    context: Context,
    host: HostRef,
    budget: Budget,
    script: String,
    timeout: Duration,
    callbacks: Callbacks,
    destroyed: bool,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The helpers must be released while the runtime is still alive: a
        // value kept past the runtime would trip QuickJS's leak assertion.
        if let Ok(mut h) = self.host.try_borrow_mut() {
            h.helpers = None;
        }
    }
}

/// The script thread's body: load, report, then serve commands until
/// shutdown or until every sender is gone.
pub(crate) fn run(
    setup: Setup,
    loaded: std::sync::mpsc::Sender<Result<Loaded, ScriptLoadError>>,
    commands: flume::Receiver<Command>,
) {
    let mut engine = match Engine::load(setup) {
        Ok((engine, info)) => {
            let callbacks = engine.callbacks;
            if loaded.send(Ok(Loaded { info, callbacks })).is_err() {
                return;
            }
            engine
        }
        Err(e) => {
            let _ = loaded.send(Err(e));
            return;
        }
    };
    let queue = &commands;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let disconnected = engine.serve(queue);
        if !engine.destroyed {
            engine.destroy();
        }
        drop(engine);
        disconnected
    }));
    match outcome {
        Ok(true) => return,
        Ok(false) => {}
        Err(_) => error!("script thread panicked; the plugin stops answering"),
    }
    // Shut down (or crashed): answer whatever still arrives until the plugin
    // is dropped, so that no caller waits forever on a queued reply.
    for command in commands.iter() {
        match command {
            Command::CreateSession { reply, .. } => {
                let _ = reply.send(Err(PluginError::NotRunning));
            }
            Command::HandleMessage { reply, .. } => {
                let _ = reply.send(MessageReply::Error(DUKTAPE_ERROR.to_owned()));
            }
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
            other => drop(other),
        }
    }
}

/// `native.compile(source, filename)`: sloppy global code, its completion value.
fn compile<'js>(ctx: Ctx<'js>, source: String, filename: String) -> rquickjs::Result<Value<'js>> {
    ctx.eval_with_options(source, eval_options(&filename))
}

fn eval_options(filename: &str) -> EvalOptions {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some(filename.to_owned());
    options
}

/// `file:line` of the first stack frame of an exception that has a line.
fn location_of<'js>(value: &Value<'js>) -> Option<String> {
    let obj = value.as_object()?;
    let stack: String = obj.get::<_, Option<String>>("stack").ok().flatten()?;
    stack.lines().find_map(|line| {
        let frame = line.trim().strip_prefix("at ")?;
        let inner = match (frame.rfind('('), frame.ends_with(')')) {
            (Some(open), true) => &frame[open + 1..frame.len() - 1],
            _ => frame,
        };
        // file:line[:col]
        let mut parts = inner.rsplitn(3, ':');
        let last = parts.next()?;
        let middle = parts.next()?;
        match parts.next() {
            Some(file) if middle.parse::<u32>().is_ok() && last.parse::<u32>().is_ok() => {
                Some(format!("{file}:{middle}"))
            }
            _ if last.parse::<u32>().is_ok() => Some(format!("{middle}:{last}")),
            _ => None,
        }
    })
}

/// A script failure, described.
struct Failure {
    /// `String(exception)`.
    text: String,
    /// `file:line`, when known.
    location: Option<String>,
    interrupted: bool,
    out_of_memory: bool,
}

impl Failure {
    fn describe(&self) -> String {
        match &self.location {
            Some(loc) => format!("{} (at {loc})", self.text),
            None => self.text.clone(),
        }
    }
}

impl Engine {
    fn load(setup: Setup) -> Result<(Self, PluginInfo), ScriptLoadError> {
        let Setup {
            config,
            limits,
            recording,
            core,
            extras,
        } = setup;
        let script = config.file.display().to_string();
        let engine_error = |e: rquickjs::Error| ScriptLoadError::Engine {
            path: config.file.clone(),
            message: e.to_string(),
        };
        let runtime = Runtime::new().map_err(engine_error)?;
        runtime.set_memory_limit(limits.memory_limit);
        runtime.set_max_stack_size(1024 * 1024);
        let budget = Budget::new();
        runtime.set_interrupt_handler(Some(budget.handler()));
        {
            let script = script.clone();
            runtime.set_host_promise_rejection_tracker(Some(Box::new(move |_ctx, _promise, reason, handled| {
                if !handled {
                    let text = reason.get::<Coerced<String>>().map(|c| c.0).unwrap_or_else(|_| "?".into());
                    warn!(script = %script, location = ?location_of(&reason), "unhandled promise rejection: {text}");
                }
            })));
        }
        let context = Context::full(&runtime).map_err(engine_error)?;
        let modules = config.modules.to_string_lossy().into_owned();
        let host: HostRef = Rc::new(RefCell::new(Host::new(
            core,
            script.clone(),
            modules,
            recording,
        )));
        let mut engine = Self {
            runtime,
            context,
            host,
            budget,
            script,
            timeout: limits.callback_timeout,
            callbacks: Callbacks::default(),
            destroyed: false,
        };
        engine
            .install_environment(&extras)
            .map_err(|message| ScriptLoadError::Engine {
                path: config.file.clone(),
                message,
            })?;
        let source = std::fs::read(&config.file).map_err(|source| ScriptLoadError::Read {
            path: config.file.clone(),
            source,
        })?;
        if source.iter().all(u8::is_ascii_whitespace) {
            return Err(ScriptLoadError::Empty {
                path: config.file.clone(),
            });
        }
        // Loading gets a generous budget: a big script compiles slowly in debug builds.
        let load_budget = engine.timeout.max(Duration::from_secs(10));
        engine
            .evaluate(&source, load_budget)
            .map_err(|f| ScriptLoadError::Evaluate {
                path: config.file.clone(),
                message: f.describe(),
            })?;
        engine.check_functions(&config.file)?;
        let init_arg = config.config.clone();
        engine
            .call_with(
                "init",
                load_budget,
                move |ctx| {
                    Ok(vec![match &init_arg {
                        Some(c) => rquickjs::String::from_str(ctx.clone(), c)?.into_value(),
                        None => Value::new_null(ctx.clone()),
                    }])
                },
                |_, _| (),
            )
            .map_err(|f| ScriptLoadError::Init {
                path: config.file.clone(),
                message: f.describe(),
            })?;
        engine.read_binary_switch();
        let info = engine.identity();
        engine.flush_notifications(&info.package);
        Ok((engine, info))
    }

    fn install_environment(&self, extras: &[ExtraFunction]) -> Result<(), String> {
        let host = self.host.clone();
        let script = self.script.clone();
        self.context.with(|ctx| -> Result<(), String> {
            let describe = |e: rquickjs::Error| -> String {
                if e.is_exception() {
                    let v = ctx.catch();
                    let text = v.get::<Coerced<String>>().map(|c| c.0).unwrap_or_default();
                    format!("{text} ({})", location_of(&v).unwrap_or_default())
                } else {
                    e.to_string()
                }
            };
            let native = Object::new(ctx.clone()).map_err(describe)?;
            let log_script = script.clone();
            native
                .set(
                    "log",
                    Function::new(ctx.clone(), move |level: i32, text: String| match level {
                        1 => warn!(target: "jsfu::script::console", script = %log_script, "{text}"),
                        2 => {
                            error!(target: "jsfu::script::console", script = %log_script, "{text}")
                        }
                        3 => {
                            debug!(target: "jsfu::script::console", script = %log_script, "{text}")
                        }
                        _ => info!(target: "jsfu::script::console", script = %log_script, "{text}"),
                    })
                    .map_err(describe)?,
                )
                .map_err(describe)?;
            native
                .set(
                    "gc",
                    Function::new(ctx.clone(), |ctx: Ctx<'_>| ctx.run_gc()).map_err(describe)?,
                )
                .map_err(describe)?;
            native
                .set(
                    "compile",
                    Function::new(ctx.clone(), compile).map_err(describe)?,
                )
                .map_err(describe)?;
            let prelude: Function = ctx
                .eval_with_options(PRELUDE, eval_options("<jsfu prelude>"))
                .map_err(describe)?;
            let helpers: Object = prelude.call((native,)).map_err(describe)?;
            host.borrow_mut().helpers = Some(Persistent::save(&ctx, helpers));
            super::host::install(&ctx, &host, extras).map_err(describe)?;
            Ok(())
        })
    }

    /// Evaluates the main script (§2 step 4).
    fn evaluate(&self, source: &[u8], limit: Duration) -> Result<(), Failure> {
        let filename = self.script.clone();
        let source = source.to_vec();
        self.context.with(|ctx| {
            self.budget.arm(limit);
            let result = ctx.eval_with_options::<Value<'_>, _>(source, eval_options(&filename));
            let fired = self.budget.disarm();
            let outcome = match result {
                Ok(_) => Ok(()),
                Err(e) => Err(self.failure(&ctx, e, fired)),
            };
            self.drain_jobs(&ctx);
            outcome
        })
    }

    fn check_functions(&mut self, file: &std::path::Path) -> Result<(), ScriptLoadError> {
        let (missing, callbacks, legacy) = self.context.with(|ctx| {
            let globals = ctx.globals();
            let is_fn = |name: &str| {
                globals
                    .get::<_, Value<'_>>(name)
                    .map(|v| v.is_function())
                    .unwrap_or(false)
            };
            let missing = MANDATORY.iter().find(|n| !is_fn(n)).copied();
            let callbacks = Callbacks {
                handle_admin_message: is_fn("handleAdminMessage"),
                incoming_rtp: is_fn("incomingRtp"),
                incoming_rtcp: is_fn("incomingRtcp"),
                incoming_text_data: is_fn("incomingTextData"),
                incoming_binary_data: is_fn("incomingBinaryData"),
                incoming_data_legacy: is_fn("incomingData"),
                data_ready: is_fn("dataReady"),
                slow_link: is_fn("slowLink"),
                substream_changed: is_fn("substreamChanged"),
                temporal_layer_changed: is_fn("temporalLayerChanged"),
            };
            (missing, callbacks, is_fn("incomingData"))
        });
        if let Some(name) = missing {
            return Err(ScriptLoadError::MissingFunction {
                path: file.to_path_buf(),
                name,
            });
        }
        if legacy {
            warn!(script = %self.script, "incomingData is deprecated, use incomingTextData and incomingBinaryData");
        }
        self.callbacks = callbacks;
        Ok(())
    }

    /// Reads the `jsfuBinaryAsUint8Array` opt-in once, after `init`.
    fn read_binary_switch(&self) {
        let on = self.context.with(|ctx| {
            ctx.globals()
                .get::<_, Value<'_>>("jsfuBinaryAsUint8Array")
                .map(|v| v.as_bool() == Some(true))
        });
        self.host.borrow_mut().binary_as_u8 = on.unwrap_or(false);
    }

    /// The identity getters (§3), with defaults.
    fn identity(&self) -> PluginInfo {
        let string = |name: &str, default: &str| -> String {
            self.call_with(
                name,
                self.timeout,
                |_| Ok(Vec::new()),
                |_, v| v.as_string().map(|s| s.to_string()),
            )
            .ok()
            .flatten()
            .and_then(Result::ok)
            .unwrap_or_else(|| default.to_owned())
        };
        let defined = |name: &str| {
            self.context.with(|ctx| {
                ctx.globals()
                    .get::<_, Value<'_>>(name)
                    .map(|v| v.is_function())
                    .unwrap_or(false)
            })
        };
        let get = |name: &str, default: &str| {
            if defined(name) {
                string(name, default)
            } else {
                default.to_owned()
            }
        };
        let version = if defined("getVersion") {
            self.call_with(
                "getVersion",
                self.timeout,
                |_| Ok(Vec::new()),
                |_, v| v.as_number(),
            )
            .ok()
            .flatten()
            .filter(|n| n.is_finite())
            .map(|n| n.trunc() as i64)
            .unwrap_or(1)
        } else {
            1
        };
        PluginInfo {
            version,
            version_string: get("getVersionString", "0.0.1"),
            description: get(
                "getDescription",
                "A custom plugin for implementing the logic in JavaScript, via Duktape.",
            ),
            name: get("getName", "Janus JavaScript plugin (Duktape)"),
            author: get("getAuthor", "Meetecho s.r.l."),
            package: get("getPackage", "janus.plugin.duktape"),
        }
    }

    fn flush_notifications(&self, package: &str) {
        let mut h = self.host.borrow_mut();
        h.package = Some(package.to_owned());
        let pending = std::mem::take(&mut h.pending_notifications);
        let core = h.core.clone();
        drop(h);
        for (handle, event) in pending {
            core.notify_event(package, handle, event);
        }
    }

    /// Describes (and logs nothing about) a failed entry.
    fn failure<'js>(&self, ctx: &Ctx<'js>, error: rquickjs::Error, fired: bool) -> Failure {
        let (text, location) = if error.is_exception() {
            let value = ctx.catch();
            let location = location_of(&value);
            // String(exception): honours a script-defined toString.
            self.budget.arm(self.timeout);
            let text = match value.get::<Coerced<String>>() {
                Ok(c) => c.0,
                Err(_) => {
                    let _ = ctx.catch();
                    "exception (its toString failed)".to_owned()
                }
            };
            self.budget.disarm();
            (text, location)
        } else {
            (error.to_string(), None)
        };
        let out_of_memory =
            text.contains("out of memory") || matches!(error, rquickjs::Error::Allocation);
        Failure {
            text,
            location,
            interrupted: fired,
            out_of_memory,
        }
    }

    /// Logs a failed callback, and collects garbage after running out of memory.
    fn report(&self, callback: &str, failure: &Failure) {
        let location = failure.location.as_deref().unwrap_or("?");
        if failure.interrupted {
            error!(
                script = %self.script, callback, location,
                "script callback interrupted after exceeding its {} ms budget", self.timeout.as_millis()
            );
        } else if failure.out_of_memory {
            error!(script = %self.script, callback, location, "script ran out of memory: {}", failure.text);
        } else {
            warn!(script = %self.script, callback, location, "script callback failed: {}", failure.text);
        }
        if failure.out_of_memory {
            self.runtime.run_gc();
        }
    }

    /// Runs queued promise jobs (ES2020+ async code) under a fresh budget.
    fn drain_jobs(&self, ctx: &Ctx<'_>) {
        self.budget.arm(self.timeout);
        let mut ran = false;
        while ctx.execute_pending_job() {
            ran = true;
            if self.budget.expired() {
                break;
            }
        }
        let fired = self.budget.disarm();
        if ran && fired {
            error!(
                script = %self.script,
                "promise jobs interrupted after exceeding the {} ms budget", self.timeout.as_millis()
            );
        }
    }

    /// Calls the global function `name` with the arguments `args` builds,
    /// then maps its result with `map`. Failures are logged here.
    fn call_with<T>(
        &self,
        name: &str,
        limit: Duration,
        args: impl for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<Vec<Value<'js>>>,
        map: impl for<'js> FnOnce(&Ctx<'js>, Value<'js>) -> T,
    ) -> Result<T, Failure> {
        let result = self.context.with(|ctx| {
            let outcome = (|| -> Result<T, Failure> {
                let function = ctx
                    .globals()
                    .get::<_, Value<'_>>(name)
                    .map_err(|e| self.failure(&ctx, e, false))?;
                let Some(function) = function.as_function().cloned() else {
                    return Err(Failure {
                        text: format!("TypeError: {name} is not callable"),
                        location: None,
                        interrupted: false,
                        out_of_memory: false,
                    });
                };
                let values = args(&ctx).map_err(|e| self.failure(&ctx, e, false))?;
                let mut call_args = Args::new(ctx.clone(), values.len());
                for v in values {
                    call_args
                        .push_arg(v)
                        .map_err(|e| self.failure(&ctx, e, false))?;
                }
                self.budget.arm(limit);
                let result = function.call_arg::<Value<'_>>(call_args);
                let fired = self.budget.disarm();
                match result {
                    Ok(v) => Ok(map(&ctx, v)),
                    Err(e) => Err(self.failure(&ctx, e, fired)),
                }
            })();
            self.drain_jobs(&ctx);
            outcome
        });
        if let Err(failure) = &result {
            self.report(name, failure);
        }
        result
    }

    /// Calls a callback whose result is ignored.
    fn call(
        &self,
        name: &str,
        args: impl for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<Vec<Value<'js>>>,
    ) {
        let _ = self.call_with(name, self.timeout, args, |_, _| ());
    }

    /// Serves commands; returns true when every sender is gone, false after a shutdown.
    fn serve(&mut self, commands: &flume::Receiver<Command>) -> bool {
        loop {
            self.run_timers();
            self.run_pokes();
            let next = if self.host.borrow().pokes > 0 {
                Some(Instant::now())
            } else {
                self.host.borrow().timers.peek().map(|t| t.0.at)
            };
            let received = match next {
                Some(at) => commands.recv_deadline(at),
                None => commands
                    .recv()
                    .map_err(|_| flume::RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(Command::Shutdown { reply }) => {
                    self.destroy();
                    let _ = reply.send(());
                    return false;
                }
                Ok(command) => self.handle(command),
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => return true,
            }
        }
    }

    /// One `resumeScheduler()` per poke pending now (§5.2); pokes made by
    /// these calls wait for the next turn, so commands are not starved.
    fn run_pokes(&self) {
        let pending = std::mem::take(&mut self.host.borrow_mut().pokes);
        for _ in 0..pending {
            self.call("resumeScheduler", |_| Ok(Vec::new()));
        }
    }

    /// Fires the timers that are due, in time order (§5.3).
    fn run_timers(&self) {
        let now = Instant::now();
        loop {
            let timer = {
                let mut h = self.host.borrow_mut();
                match h.timers.peek() {
                    Some(t) if t.0.at <= now => h.timers.pop().map(|t| t.0),
                    _ => None,
                }
            };
            let Some(timer) = timer else { return };
            let arg = timer.arg;
            self.call(&timer.name, move |ctx| match &arg {
                Some(a) => Ok(vec![
                    rquickjs::String::from_str(ctx.clone(), a)?.into_value(),
                ]),
                None => Ok(Vec::new()),
            });
        }
    }

    fn destroy(&mut self) {
        {
            let mut h = self.host.borrow_mut();
            h.pokes = 0;
            h.timers.clear();
        }
        self.call("destroy", |_| Ok(Vec::new()));
        self.destroyed = true;
    }

    fn live(&self, id: PluginSessionId) -> bool {
        self.host.borrow().sessions.contains_key(&id.0)
    }

    /// The session exists and is not hanging up (media callbacks).
    fn media_live(&self, id: PluginSessionId) -> bool {
        self.host
            .borrow()
            .sessions
            .get(&id.0)
            .is_some_and(|s| !s.hanging_up)
    }

    fn id_arg<'js>(ctx: &Ctx<'js>, id: PluginSessionId) -> Value<'js> {
        Value::new_number(ctx.clone(), f64::from(id.0))
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::CreateSession { handle, reply } => {
                let id = {
                    let mut h = self.host.borrow_mut();
                    let id = h.allocate_id();
                    h.sessions.insert(id, Session::new(handle));
                    PluginSessionId(id)
                };
                self.call("createSession", |ctx| Ok(vec![Self::id_arg(ctx, id)]));
                let _ = reply.send(Ok(id));
            }
            Command::HandleMessage {
                id,
                transaction,
                body,
                jsep,
                reply,
            } => {
                let _ = reply.send(self.handle_message(id, transaction, body, jsep));
            }
            Command::DestroySession { id, teardown } => self.destroy_session(id, teardown),
            Command::SetupMedia { id, reply } => {
                let known = {
                    let mut h = self.host.borrow_mut();
                    match h.sessions.get_mut(&id.0) {
                        Some(s) => {
                            s.started = true;
                            s.hanging_up = false;
                            true
                        }
                        None => false,
                    }
                };
                if known {
                    self.call("setupMedia", |ctx| Ok(vec![Self::id_arg(ctx, id)]));
                }
                let _ = reply.send(());
            }
            Command::HangupMedia { id, reason } => {
                debug!(script = %self.script, session = %id, reason = reason.as_str(), "hangup");
                self.hangup(id);
            }
            Command::QuerySession { id, reply } => {
                let _ = reply.send(self.query_session(id));
            }
            Command::AdminMessage { request, reply } => {
                let _ = reply.send(self.admin_message(request));
            }
            Command::IncomingRtp {
                id,
                video,
                rtcp,
                packet,
            } => {
                let (defined, name) = if rtcp {
                    (self.callbacks.incoming_rtcp, "incomingRtcp")
                } else {
                    (self.callbacks.incoming_rtp, "incomingRtp")
                };
                if defined && self.media_live(id) {
                    let as_u8 = self.host.borrow().binary_as_u8;
                    self.call(name, move |ctx| {
                        let len = packet.len() as f64;
                        Ok(vec![
                            Self::id_arg(ctx, id),
                            Value::new_bool(ctx.clone(), video),
                            binary_value(ctx, packet, as_u8)?,
                            Value::new_number(ctx.clone(), len),
                        ])
                    });
                }
            }
            Command::IncomingData {
                id,
                text,
                data,
                label,
                protocol,
            } => {
                let name = if text {
                    if self.callbacks.incoming_text_data {
                        "incomingTextData"
                    } else if self.callbacks.incoming_data_legacy {
                        "incomingData"
                    } else {
                        return;
                    }
                } else if self.callbacks.incoming_binary_data {
                    "incomingBinaryData"
                } else {
                    return;
                };
                if !self.media_live(id) {
                    return;
                }
                let as_u8 = self.host.borrow().binary_as_u8;
                self.call(name, move |ctx| {
                    let len = data.len() as f64;
                    let payload = if text {
                        rquickjs::String::from_str(ctx.clone(), &String::from_utf8_lossy(&data))?
                            .into_value()
                    } else {
                        binary_value(ctx, data, as_u8)?
                    };
                    Ok(vec![
                        Self::id_arg(ctx, id),
                        payload,
                        Value::new_number(ctx.clone(), len),
                        rquickjs::String::from_str(ctx.clone(), &label)?.into_value(),
                        rquickjs::String::from_str(ctx.clone(), &protocol)?.into_value(),
                    ])
                });
            }
            Command::DataReady { id } => {
                let live = {
                    let mut h = self.host.borrow_mut();
                    match h.sessions.get_mut(&id.0) {
                        Some(s) if !s.hanging_up => {
                            s.data_ready = true;
                            true
                        }
                        _ => false,
                    }
                };
                if live && self.callbacks.data_ready {
                    self.call("dataReady", |ctx| Ok(vec![Self::id_arg(ctx, id)]));
                }
            }
            Command::SlowLink { id, uplink, video } => {
                if self.callbacks.slow_link && self.live(id) {
                    self.call("slowLink", |ctx| {
                        Ok(vec![
                            Self::id_arg(ctx, id),
                            Value::new_bool(ctx.clone(), uplink),
                            Value::new_bool(ctx.clone(), video),
                        ])
                    });
                }
            }
            Command::LayerChanged {
                id,
                temporal,
                layer,
            } => {
                // Decision 1: temporalLayerChanged whenever it is defined.
                let (defined, name) = if temporal {
                    (
                        self.callbacks.temporal_layer_changed,
                        "temporalLayerChanged",
                    )
                } else {
                    (self.callbacks.substream_changed, "substreamChanged")
                };
                if defined && self.live(id) {
                    self.call(name, |ctx| {
                        Ok(vec![
                            Self::id_arg(ctx, id),
                            Value::new_number(ctx.clone(), f64::from(layer)),
                        ])
                    });
                }
            }
            Command::Shutdown { reply } => {
                // `serve` handles shutdown itself; this arm only keeps the match total.
                if !self.destroyed {
                    self.destroy();
                }
                let _ = reply.send(());
            }
        }
    }

    fn handle_message(
        &self,
        id: PluginSessionId,
        transaction: String,
        body: String,
        jsep: Option<JsepForPlugin>,
    ) -> MessageReply {
        {
            let mut h = self.host.borrow_mut();
            let Some(session) = h.sessions.get_mut(&id.0) else {
                return MessageReply::Error("No session associated with this handle".to_owned());
            };
            if let Some(j) = &jsep {
                if j.kind.eq_ignore_ascii_case("answer") {
                    session.video_codec = j.video_codec.clone();
                }
                if j.e2ee {
                    session.e2ee = true;
                }
                if let Some(Json::Array(entries)) = &j.simulcast {
                    if let Some(first) = entries.first() {
                        session.simulcast = Some(first.clone());
                    }
                }
            }
        }
        let jsep_text = jsep.map(|j| j.text);
        let result = self.call_with(
            "handleMessage",
            self.timeout,
            move |ctx| {
                Ok(vec![
                    Self::id_arg(ctx, id),
                    rquickjs::String::from_str(ctx.clone(), &transaction)?.into_value(),
                    rquickjs::String::from_str(ctx.clone(), &body)?.into_value(),
                    match &jsep_text {
                        Some(t) => rquickjs::String::from_str(ctx.clone(), t)?.into_value(),
                        None => Value::new_null(ctx.clone()),
                    },
                ])
            },
            |ctx, v| {
                if let Some(n) = v.as_number() {
                    Ok(n)
                } else if v.is_string() {
                    Err(Some(super::convert::js_text(ctx, &v).unwrap_or_default()))
                } else {
                    Err(None)
                }
            },
        );
        match result {
            Ok(Ok(n)) => {
                if c_int(n) >= 0 {
                    MessageReply::Ack
                } else {
                    MessageReply::Error(DUKTAPE_ERROR.to_owned())
                }
            }
            Ok(Err(Some(text))) => match crate::json::parse_container(&text) {
                Ok(Json::Object(map)) => MessageReply::Success(map),
                Ok(_) => MessageReply::Error("Plugin returned an invalid JSON response".to_owned()),
                Err(_) => MessageReply::Error(DUKTAPE_ERROR.to_owned()),
            },
            Ok(Err(None)) | Err(_) => MessageReply::Error(DUKTAPE_ERROR.to_owned()),
        }
    }

    /// `hangupMedia`, at most once per `setupMedia` cycle.
    fn hangup(&self, id: PluginSessionId) {
        {
            let mut h = self.host.borrow_mut();
            match h.sessions.get(&id.0) {
                Some(s) if !s.hanging_up => h.reset_for_hangup(id.0),
                _ => return,
            }
        }
        self.call("hangupMedia", |ctx| Ok(vec![Self::id_arg(ctx, id)]));
    }

    fn destroy_session(&self, id: PluginSessionId, teardown: Teardown) {
        if !self.live(id) {
            debug!(script = %self.script, session = %id, "destroy of an unknown session ignored");
            return;
        }
        if teardown.had_pc {
            self.hangup(id);
        }
        self.call("destroySession", |ctx| Ok(vec![Self::id_arg(ctx, id)]));
        let removed = self.host.borrow_mut().remove_session(id.0);
        if let Some(session) = removed {
            let core = self.host.borrow().core.clone();
            core.session_gone(session.handle, teardown);
        }
    }

    fn query_session(&self, id: PluginSessionId) -> Option<Map<String, Json>> {
        if !self.live(id) {
            return None;
        }
        let result = self.call_with(
            "querySession",
            self.timeout,
            |ctx| Ok(vec![Self::id_arg(ctx, id)]),
            |ctx, v| {
                if v.is_string() {
                    super::convert::js_text(ctx, &v).ok()
                } else {
                    None
                }
            },
        );
        match result {
            Ok(Some(text)) => match crate::json::parse_container(&text) {
                Ok(Json::Object(map)) => Some(map),
                _ => None,
            },
            Ok(None) => None,
            Err(failure) => {
                let mut map = Map::new();
                map.insert("error".to_owned(), Json::String(failure.text));
                Some(map)
            }
        }
    }

    fn admin_message(&self, request: Option<String>) -> Json {
        let empty = Json::Object(Map::new());
        let Some(request) = request else { return empty };
        if !self.callbacks.handle_admin_message {
            return empty;
        }
        let result = self.call_with(
            "handleAdminMessage",
            self.timeout,
            move |ctx| {
                Ok(vec![
                    rquickjs::String::from_str(ctx.clone(), &request)?.into_value(),
                ])
            },
            |ctx, v| {
                if v.is_string() {
                    super::convert::js_text(ctx, &v).ok()
                } else {
                    None
                }
            },
        );
        match result {
            Ok(Some(text)) => crate::json::parse_container(&text).unwrap_or(empty),
            _ => empty,
        }
    }
}

/// Binary data for a callback: a byte string, or a `Uint8Array` when the
/// script opted in.
fn binary_value<'js>(ctx: &Ctx<'js>, bytes: Vec<u8>, as_u8: bool) -> rquickjs::Result<Value<'js>> {
    if as_u8 {
        Ok(rquickjs::TypedArray::<u8>::new(ctx.clone(), bytes)?.into_value())
    } else {
        Ok(rquickjs::String::from_str(ctx.clone(), &latin1_string(&bytes))?.into_value())
    }
}
