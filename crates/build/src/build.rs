//! The build loop: stages, steps, the cache and Docker's classic output.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::digest::short_id;
use berth_image::{ContainerDefaults, History, ImageConfig, ImageError, ImageStore, RootFs};
use berth_runtime::{NetworkNamespace, Runtime};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

mod steps;

use crate::cache::Cache;
use crate::context::Context;
use crate::dockerfile::{self, Dockerfile, Form, Instruction};
use crate::lex::{self, Vars};
use crate::run::{self, blocking};
use crate::{BuildError, BuildOptions, Progress};

/// Builds images; one per daemon, shared by concurrent builds.
#[derive(Debug, Clone)]
pub struct Builder {
    store: Arc<ImageStore>,
    runtime: Runtime,
    root: PathBuf,
    cache: Cache,
    network: NetworkNamespace,
}

/// State of the stage being built.
#[derive(Debug, Clone)]
struct Stage {
    /// Current image (`None`: scratch with nothing on it yet).
    image: Option<String>,
    config: ImageConfig,
    /// ARGs declared in the stage with their values.
    args: Vec<(String, Option<String>)>,
    cmd_set: bool,
}

impl Stage {
    fn defaults(&mut self) -> &mut ContainerDefaults {
        self.config
            .config
            .get_or_insert_with(ContainerDefaults::default)
    }

    fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// Variables for substitution: ARGs, overridden by ENV.
    fn vars(&self) -> Vars {
        let mut v: Vars = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for e in self.env() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.into(), val.into());
            }
        }
        v
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.extra.get("Shell"))
            .and_then(|s| serde_json::from_value::<Vec<String>>(s.clone()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }
}

/// Writes a layer tar (the same bytes each call).
type LayerProducer = Arc<dyn Fn(&mut dyn std::io::Write) -> Result<(), BuildError> + Send + Sync>;

/// Runs `produce` on a thread writing into a pipe; returns the reading end.
fn pipe_layer(
    produce: &LayerProducer,
) -> std::io::Result<(
    std::io::PipeReader,
    std::thread::JoinHandle<Result<(), BuildError>>,
)> {
    let (r, w) = std::io::pipe()?;
    let p = produce.clone();
    let h = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, w);
        p(&mut w)?;
        std::io::Write::flush(&mut w)?;
        Ok(())
    });
    Ok((r, h))
}

/// Waits for a layer writer.
fn join_writer(h: std::thread::JoinHandle<Result<(), BuildError>>) -> Result<(), BuildError> {
    h.join()
        .map_err(|_| BuildError::Io(std::io::Error::other("layer writer panicked")))?
}

fn broken_pipe(e: &BuildError) -> bool {
    let io = match e {
        BuildError::Io(e) | BuildError::Image(ImageError::Io(e)) => e,
        _ => return false,
    };
    io.kind() == std::io::ErrorKind::BrokenPipe
}

/// The error that explains a failed layer: the writer's own (a source gone: the store only
/// saw a short tar), else the store's (the writer then only saw the pipe close).
fn first_cause<T>(
    stored: Result<T, ImageError>,
    wrote: Result<(), BuildError>,
) -> Result<T, BuildError> {
    match (stored, wrote) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Err(w)) if broken_pipe(&w) => Err(e.into()),
        (_, Err(w)) => Err(w),
        (Err(e), Ok(())) => Err(e.into()),
    }
}

/// What a step changes.
enum Change {
    /// Only the config.
    Config(Box<ContainerDefaults>),
    /// A layer tar, written by the producer (COPY/ADD).
    Layer(LayerProducer),
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `/a/b/../c` → `/a/c`.
fn clean_abs(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Go-style duration (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn duration_ns(s: &str) -> Result<i64, BuildError> {
    let bad = || BuildError::Syntax(format!("time: invalid duration \"{s}\""));
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * mult;
        rest = &rest[u..];
    }
    Ok(total as i64)
}

impl Builder {
    /// A builder keeping its cache and temporary files under `root`.
    /// With `sweep`, temporary files a crashed earlier process left are removed first (only
    /// when no build of this root is running).
    pub fn new(
        store: Arc<ImageStore>,
        runtime: Runtime,
        root: &Path,
        sweep: bool,
    ) -> Result<Self, BuildError> {
        let tmp = root.join("tmp");
        if sweep {
            let _ = fs::remove_dir_all(&tmp);
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self {
            cache: Cache::open(&root.join("cache"))?,
            store,
            runtime,
            root: root.to_path_buf(),
            network: NetworkNamespace::Host,
        })
    }

    /// The network namespace RUN steps join (the host's by default).
    pub fn with_network(mut self, network: NetworkNamespace) -> Self {
        self.network = network;
        self
    }

    fn tmp(&self, prefix: &str) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{prefix}-{:016x}", rand::random::<u64>()))
    }

    /// Extracts a context tar (blocking); reads the Dockerfile named `dockerfile` from it,
    /// then applies `.dockerignore`.
    pub fn prepare(
        &self,
        tar: &mut dyn Read,
        dockerfile: &str,
    ) -> Result<(Context, Dockerfile), BuildError> {
        let started = std::time::Instant::now();
        let mut ctx = Context::extract(tar, &self.tmp("context"))?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "build context received and indexed"
        );
        let name = if dockerfile.is_empty() {
            "Dockerfile"
        } else {
            dockerfile
        };
        let not_found = |e: &BuildError| matches!(e, BuildError::Io(e) if e.kind() == std::io::ErrorKind::NotFound);
        let text = match ctx.read_file(name.trim_start_matches('/')) {
            Ok(t) => t,
            Err(e) if not_found(&e) && name == "Dockerfile" => match ctx.read_file("dockerfile") {
                Ok(t) => t,
                Err(e) if not_found(&e) => {
                    return Err(BuildError::Context(format!(
                        "Cannot locate specified Dockerfile: {name}"
                    )));
                }
                Err(e) => return Err(e),
            },
            Err(e) if not_found(&e) => {
                return Err(BuildError::Context(format!(
                    "Cannot locate specified Dockerfile: {name}"
                )));
            }
            Err(e) => return Err(e),
        };
        let df = dockerfile::parse(&String::from_utf8_lossy(&text))?;
        ctx.apply_dockerignore()?;
        Ok((ctx, df))
    }

    /// Runs a build; reports progress on `out`; returns the image id.
    pub async fn build(
        &self,
        ctx: &Context,
        df: &Dockerfile,
        opts: &BuildOptions,
        out: UnboundedSender<Progress>,
    ) -> Result<String, BuildError> {
        let (quiet_tx, _quiet_rx) = tokio::sync::mpsc::unbounded_channel();
        let say = if opts.quiet { quiet_tx } else { out.clone() };
        let mut run = BuildRun {
            b: self,
            ctx,
            escape: df.escape,
            opts,
            out: say,
            step: 0,
            total: 0,
            stages: Vec::new(),
            used_args: BTreeSet::new(),
            global: Vec::new(),
            step_started: None,
            removals: Vec::new(),
        };
        let id = run.all(df).await;
        // Whatever happened, the build ends with its containers gone.
        for h in run.removals.drain(..) {
            let _ = h.await;
        }
        run.step_done();
        let id = id?;
        for t in &opts.tags {
            let (s, id2, t2) = (self.store.clone(), id.clone(), t.clone());
            blocking(move || {
                // A rebuild that changed nothing finds its tags in place: no reference
                // file to rewrite (and sync) on that path.
                let named = berth_image::Reference::parse(&t2)
                    .map(|r| r.with_default_tag().to_string())
                    .ok();
                let in_place = s
                    .resolve(&id2)
                    .is_ok_and(|img| named.is_some_and(|n| img.tags.contains(&n)));
                if !in_place {
                    s.tag(&id2, &t2)?;
                }
                Ok(())
            })
            .await?;
        }
        let _ = out.send(Progress::Aux(id.clone()));
        if opts.quiet {
            let _ = out.send(Progress::Stream(format!("{id}\n")));
        } else {
            let _ = out.send(Progress::Stream(format!(
                "Successfully built {}\n",
                &short_id(&id)[..12.min(short_id(&id).len())]
            )));
            for t in &opts.tags {
                let shown = berth_image::Reference::parse_with_default_tag(t)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| t.clone());
                let _ = out.send(Progress::Stream(format!("Successfully tagged {shown}\n")));
            }
        }
        Ok(id)
    }
}

struct BuildRun<'a> {
    b: &'a Builder,
    ctx: &'a Context,
    escape: char,
    opts: &'a BuildOptions,
    out: UnboundedSender<Progress>,
    step: usize,
    total: usize,
    /// Finished stages: name (lower case) and image.
    stages: Vec<(Option<String>, Option<String>)>,
    used_args: BTreeSet<String>,
    /// ARGs before the first FROM.
    global: Vec<(String, Option<String>)>,
    /// When the current step began.
    step_started: Option<std::time::Instant>,
    /// RUN containers being removed while the next steps go on.
    removals: Vec<tokio::task::JoinHandle<()>>,
}

impl BuildRun<'_> {
    fn say(&self, s: impl Into<String>) {
        let _ = self.out.send(Progress::Stream(s.into()));
    }

    async fn all(&mut self, df: &Dockerfile) -> Result<String, BuildError> {
        let ins = &df.instructions;
        let first_from = ins
            .iter()
            .position(|i| i.keyword == "FROM")
            .ok_or_else(|| BuildError::Syntax("no build stage in current context".into()))?;
        if let Some(bad) = ins[..first_from].iter().find(|i| i.keyword != "ARG") {
            return Err(BuildError::Syntax(format!(
                "dockerfile parse error on line {}: {} not allowed before FROM",
                bad.line, bad.keyword
            )));
        }
        // Stages: [start, end) ranges of instructions beginning with FROM.
        let mut bounds: Vec<usize> = ins
            .iter()
            .enumerate()
            .filter(|(_, i)| i.keyword == "FROM")
            .map(|(n, _)| n)
            .collect();
        bounds.push(ins.len());
        let names: Vec<Option<String>> = bounds[..bounds.len() - 1]
            .iter()
            .map(|&s| stage_name(&ins[s]))
            .collect();
        let last = match &self.opts.target {
            Some(t) if !t.is_empty() => names
                .iter()
                .position(|n| n.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                    BuildError::NotFound(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            _ => names.len() - 1,
        };
        let mut labels: Vec<Instruction> = Vec::new();
        if !self.opts.labels.is_empty() {
            let text = self
                .opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
                .collect::<Vec<_>>()
                .join(" ");
            labels.push(dockerfile::instruction(0, &format!("LABEL {text}"))?);
        }
        self.total = first_from + (bounds[last + 1] - first_from) + labels.len();
        for ins in &ins[..first_from] {
            self.step_header(ins);
            let pairs = self.arg_pairs(ins, &Vars::new())?;
            for (k, v) in pairs {
                let v = self
                    .opts
                    .build_args
                    .get(&k)
                    .cloned()
                    .inspect(|_| {
                        self.used_args.insert(k.clone());
                    })
                    .unwrap_or(v);
                self.global.retain(|(n, _)| *n != k);
                self.global.push((k, v));
            }
        }
        let mut result = None;
        for s in 0..=last {
            let body: Vec<Instruction> = if s == last {
                ins[bounds[s] + 1..bounds[s + 1]]
                    .iter()
                    .cloned()
                    .chain(labels.iter().cloned())
                    .collect()
            } else {
                ins[bounds[s] + 1..bounds[s + 1]].to_vec()
            };
            let image = self.stage(&ins[bounds[s]], &body).await?;
            self.stages.push((names[s].clone(), image.clone()));
            result = image;
        }
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k))
            .collect();
        if !unused.is_empty() {
            let list = unused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            self.say(format!(
                "[Warning] One or more build-args [{list}] were not consumed\n"
            ));
        }
        result.ok_or_else(|| {
            BuildError::Syntax("No image was generated. Is your Dockerfile empty?".into())
        })
    }

    fn step_header(&mut self, ins: &Instruction) {
        self.step_done();
        self.step += 1;
        self.say(format!(
            "Step {}/{} : {}\n",
            self.step, self.total, ins.original
        ));
    }

    /// Logs how long the step that just ended took (the build's profile at debug level).
    fn step_done(&mut self) {
        let now = std::time::Instant::now();
        if let Some(started) = self.step_started.replace(now) {
            tracing::debug!(
                step = self.step,
                elapsed_ms = (now - started).as_millis() as u64,
                "build step done"
            );
        }
    }

    fn global_vars(&self) -> Vars {
        self.global
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    fn arg_pairs(
        &self,
        ins: &Instruction,
        vars: &Vars,
    ) -> Result<Vec<(String, Option<String>)>, BuildError> {
        let mut out = Vec::new();
        for w in lex::split_raw(&ins.args, self.escape) {
            match w.split_once('=') {
                Some((k, v)) => out.push((k.to_string(), Some(lex::word(v, vars, self.escape)?))),
                None => out.push((w.clone(), None)),
            }
        }
        Ok(out)
    }

    /// Builds one stage; returns its image.
    async fn stage(
        &mut self,
        from: &Instruction,
        body: &[Instruction],
    ) -> Result<Option<String>, BuildError> {
        self.step_header(from);
        let words = lex::words(&from.args, &self.global_vars(), self.escape)?;
        let base = words.first().cloned().ok_or_else(|| {
            BuildError::Syntax("FROM requires either one or three arguments".into())
        })?;
        if words.len() != 1 && !(words.len() == 3 && words[1].eq_ignore_ascii_case("as")) {
            return Err(BuildError::Syntax(
                "FROM requires either one or three arguments".into(),
            ));
        }
        let image = if base.eq_ignore_ascii_case("scratch") {
            None
        } else if let Some((_, img)) = self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(base.to_ascii_lowercase().as_str()))
        {
            img.clone()
        } else {
            let (s, name) = (self.b.store.clone(), base.clone());
            let img = blocking(move || match s.resolve(&name) {
                Ok(i) => Ok(i.id),
                Err(ImageError::NotFound(_)) => Err(BuildError::NotFound(format!(
                    "pull access denied for {name}, repository does not exist or may require 'docker login': No such image: {name}"
                ))),
                Err(e) => Err(e.into()),
            })
            .await?;
            Some(img)
        };
        let config = match &image {
            Some(id) => {
                let (s, id) = (self.b.store.clone(), id.clone());
                let bytes = blocking(move || Ok(s.config_bytes(&id)?)).await?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| BuildError::Context(format!("invalid base image config: {e}")))?
            }
            None => ImageConfig {
                architecture: host_arch().into(),
                os: "linux".into(),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..ImageConfig::default()
            },
        };
        match &image {
            Some(id) => self.say(format!(" ---> {}\n", &short_id(id)[..12])),
            None => self.say(" ---> \n"),
        }
        let mut st = Stage {
            image,
            config,
            args: Vec::new(),
            cmd_set: false,
        };
        if !st.env().iter().any(|e| e.starts_with("PATH=")) {
            let mut env = st.env();
            env.insert(0, run::DEFAULT_PATH.into());
            st.defaults().env = Some(env);
        }
        // ONBUILD triggers of the base run first and are not inherited.
        let triggers: Vec<String> = st
            .config
            .config
            .as_mut()
            .and_then(|c| c.extra.remove("OnBuild"))
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            self.say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let ins = dockerfile::instruction(from.line, t)?;
                self.dispatch(&mut st, &ins).await?;
            }
        }
        for ins in body {
            self.step_header(ins);
            self.dispatch(&mut st, ins).await?;
        }
        Ok(st.image)
    }

    async fn dispatch(&mut self, st: &mut Stage, ins: &Instruction) -> Result<(), BuildError> {
        let vars = st.vars();
        let e = self.escape;
        let kw = ins.keyword.as_str();
        if !matches!(kw, "COPY" | "ADD" | "HEALTHCHECK" | "RUN" | "FROM") {
            ins.check_flags(&[])?;
        }
        let mut d = st.config.config.clone().unwrap_or_default();
        let nop = |s: String| format!("/bin/sh -c #(nop)  {s}");
        match kw {
            "ENV" => {
                let pairs = lex::pairs(&ins.args, &vars, e, "ENV")?;
                let mut env = d.env.clone().unwrap_or_default();
                for (k, v) in &pairs {
                    env.retain(|x| x.split_once('=').map(|(a, _)| a) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                d.env = Some(env);
                let shown = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.meta(st, d, nop(format!("ENV {shown}"))).await
            }
            "LABEL" => {
                let pairs = lex::pairs(&ins.args, &vars, e, "LABEL")?;
                let mut labels = d.labels.clone().unwrap_or_default();
                for (k, v) in &pairs {
                    labels.insert(k.clone(), v.clone());
                }
                d.labels = Some(labels);
                let shown = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.meta(st, d, nop(format!("LABEL {shown}"))).await
            }
            "MAINTAINER" => {
                let who = lex::word(&ins.args, &vars, e)?;
                st.config.author = Some(who.clone());
                self.meta(st, d, nop(format!("MAINTAINER {who}"))).await
            }
            "ARG" => {
                let pairs = self.arg_pairs(ins, &vars)?;
                let mut shown = Vec::new();
                for (k, default) in pairs {
                    let global = self
                        .global
                        .iter()
                        .find(|(n, _)| *n == k)
                        .and_then(|(_, v)| v.clone());
                    let value = match self.opts.build_args.get(&k) {
                        Some(v) => {
                            self.used_args.insert(k.clone());
                            v.clone().or(default.clone()).or(global)
                        }
                        None => default.clone().or(global),
                    };
                    shown.push(match &default {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    });
                    st.args.retain(|(n, _)| *n != k);
                    st.args.push((k, value));
                }
                self.meta(st, d, nop(format!("ARG {}", shown.join(" "))))
                    .await
            }
            "WORKDIR" => {
                let w = lex::word(&ins.args, &vars, e)?;
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", st.workdir())
                };
                let w = clean_abs(&joined);
                d.working_dir = Some(w.clone());
                self.meta(st, d, nop(format!("WORKDIR {w}"))).await
            }
            "USER" => {
                let u = lex::word(&ins.args, &vars, e)?;
                d.user = Some(u.clone());
                self.meta(st, d, nop(format!("USER {u}"))).await
            }
            "STOPSIGNAL" => {
                let s = lex::word(&ins.args, &vars, e)?;
                d.stop_signal = Some(s.clone());
                self.meta(st, d, nop(format!("STOPSIGNAL {s}"))).await
            }
            "EXPOSE" => {
                let mut ports = d.exposed_ports.clone().unwrap_or_default();
                let mut shown = Vec::new();
                for w in lex::words(&ins.args, &vars, e)? {
                    for p in expand_ports(&w)? {
                        shown.push(p.clone());
                        ports.insert(p, json!({}));
                    }
                }
                d.exposed_ports = Some(ports);
                self.meta(st, d, nop(format!("EXPOSE {}", shown.join(" "))))
                    .await
            }
            "VOLUME" => {
                let list = match ins.form() {
                    Form::Exec(v) => v
                        .iter()
                        .map(|s| lex::word(s, &vars, e))
                        .collect::<Result<Vec<_>, _>>()?,
                    Form::Shell(s) => lex::words(&s, &vars, e)?,
                };
                let mut vols = d.volumes.clone().unwrap_or_default();
                for v in &list {
                    if v.trim().is_empty() {
                        return Err(BuildError::Syntax(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    vols.insert(v.clone(), json!({}));
                }
                d.volumes = Some(vols);
                self.meta(st, d, nop(format!("VOLUME [{}]", list.join(" "))))
                    .await
            }
            "CMD" | "ENTRYPOINT" => {
                let argv = match ins.form() {
                    Form::Exec(v) => v,
                    Form::Shell(s) if s.is_empty() && kw == "ENTRYPOINT" => Vec::new(),
                    Form::Shell(s) => {
                        let mut sh = st.shell();
                        sh.push(s);
                        sh
                    }
                };
                let shown = serde_json::to_string(&argv).unwrap_or_default();
                if kw == "CMD" {
                    d.cmd = Some(argv);
                    st.cmd_set = true;
                } else {
                    d.entrypoint = if argv.is_empty() { None } else { Some(argv) };
                    if !st.cmd_set {
                        d.cmd = None;
                    }
                }
                self.meta(st, d, nop(format!("{kw} {shown}"))).await
            }
            "SHELL" => {
                let Form::Exec(v) = ins.form() else {
                    return Err(BuildError::Syntax(
                        "SHELL requires the arguments to be in JSON form".into(),
                    ));
                };
                if v.is_empty() {
                    return Err(BuildError::Syntax(
                        "SHELL requires at least one argument".into(),
                    ));
                }
                let shown = serde_json::to_string(&v).unwrap_or_default();
                d.extra.insert("Shell".into(), json!(v));
                self.meta(st, d, nop(format!("SHELL {shown}"))).await
            }
            "HEALTHCHECK" => {
                ins.check_flags(&[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ])?;
                let hc = self.healthcheck(st, ins)?;
                d.extra.insert("Healthcheck".into(), hc.clone());
                let shown = serde_json::to_string(&hc["Test"]).unwrap_or_default();
                self.meta(st, d, nop(format!("HEALTHCHECK &{{{shown}}}")))
                    .await
            }
            "ONBUILD" => {
                let trigger = ins.args.trim();
                let inner = dockerfile::instruction(ins.line, trigger)?;
                match inner.keyword.as_str() {
                    "ONBUILD" => {
                        return Err(BuildError::Syntax(
                            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                        ));
                    }
                    "FROM" | "MAINTAINER" => {
                        return Err(BuildError::Syntax(format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            inner.keyword
                        )));
                    }
                    _ => {}
                }
                let mut list: Vec<String> = d
                    .extra
                    .get("OnBuild")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                list.push(trigger.to_string());
                d.extra.insert("OnBuild".into(), json!(list));
                self.meta(st, d, nop(format!("ONBUILD {trigger}"))).await
            }
            "RUN" => self.run(st, ins).await,
            "COPY" | "ADD" => self.copy(st, ins).await,
            "FROM" => Err(BuildError::Syntax("FROM inside a stage".into())),
            other => Err(BuildError::Syntax(format!("unknown instruction: {other}"))),
        }
    }

    fn healthcheck(&self, st: &Stage, ins: &Instruction) -> Result<serde_json::Value, BuildError> {
        let args = ins.args.trim();
        if args.eq_ignore_ascii_case("NONE") {
            return Ok(json!({"Test": ["NONE"]}));
        }
        let (kw, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        if !kw.eq_ignore_ascii_case("CMD") {
            return Err(BuildError::Syntax(format!(
                "Unknown type \"{kw}\" in HEALTHCHECK (try CMD)"
            )));
        }
        let inner = Instruction {
            args: rest.to_string(),
            ..ins.clone()
        };
        let test = match inner.form() {
            Form::Exec(v) => std::iter::once("CMD".to_string())
                .chain(v)
                .collect::<Vec<_>>(),
            Form::Shell(s) => vec!["CMD-SHELL".to_string(), s],
        };
        let _ = st;
        let mut hc = json!({"Test": test});
        for (flag, field) in [
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start-period", "StartPeriod"),
            ("start-interval", "StartInterval"),
        ] {
            if let Some(v) = ins.flag(flag) {
                hc[field] = json!(duration_ns(v)?);
            }
        }
        if let Some(r) = ins.flag("retries") {
            let n: i64 = r
                .parse()
                .map_err(|_| BuildError::Syntax(format!("invalid retries value: {r}")))?;
            hc["Retries"] = json!(n);
        }
        Ok(hc)
    }

    /// A config-only step.
    async fn meta(
        &mut self,
        st: &mut Stage,
        d: ContainerDefaults,
        created_by: String,
    ) -> Result<(), BuildError> {
        let key = format!(
            "meta\n{created_by}\n{}",
            serde_json::to_string(&d).unwrap_or_default()
        );
        self.step_result(st, &key, created_by, Change::Config(Box::new(d)))
            .await
    }

    /// Looks the step up in the cache or makes it; updates the stage and prints the id.
    async fn step_result(
        &mut self,
        st: &mut Stage,
        key: &str,
        created_by: String,
        change: Change,
    ) -> Result<(), BuildError> {
        if self.cached(st, key).await {
            return Ok(());
        }
        let mut config = st.config.clone();
        let ts = now();
        config.created = Some(ts.clone());
        let mut history = History {
            created: Some(ts),
            created_by: Some(created_by),
            ..History::default()
        };
        let layer = match change {
            Change::Config(d) => {
                config.config = Some(*d);
                history.empty_layer = true;
                None
            }
            Change::Layer(produce) => Some(produce),
        };
        let id = self
            .register(&mut config, history, layer, st.image.clone())
            .await?;
        self.b.cache.put(st.image.as_deref(), key, &id)?;
        self.say(format!(" ---> {}\n", &short_id(&id)[..12]));
        st.config = config;
        st.image = Some(id);
        Ok(())
    }

    async fn load(&self, id: &str) -> Option<ImageConfig> {
        let (s, id) = (self.b.store.clone(), id.to_string());
        let bytes = blocking(move || Ok(s.config_bytes(&id)?)).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Adds the image of a step: `config` plus, if any, the layer tar `layer` writes, piped
    /// into the store (which keeps the blob, extracts it and tells its diff id in one pass).
    async fn register(
        &self,
        config: &mut ImageConfig,
        history: History,
        layer: Option<LayerProducer>,
        parent: Option<String>,
    ) -> Result<String, BuildError> {
        let store = self.b.store.clone();
        let mut cfg = config.clone();
        let out = blocking(move || {
            if let Some(p) = &layer {
                let below = berth_image::digest::chain_ids(&cfg.rootfs.diff_ids)
                    .last()
                    .cloned();
                let (mut r, h) = pipe_layer(p)?;
                let added = store.add_layer(&mut r, below.as_ref());
                drop(r);
                cfg.rootfs
                    .diff_ids
                    .push(first_cause(added, join_writer(h))?);
            }
            cfg.history.push(history);
            let bytes = serde_json::to_vec(&cfg).map_err(std::io::Error::other)?;
            let last = cfg.rootfs.diff_ids.len().saturating_sub(1);
            // Only if garbage collection took the new layer meanwhile: written again.
            let mut writer = None;
            let id = store.add_child_image(
                &bytes,
                &mut |i: usize| -> Result<Box<dyn Read>, ImageError> {
                    match layer.as_ref().filter(|_| i == last) {
                        Some(p) => {
                            let (r, h) = pipe_layer(p)?;
                            writer = Some(h);
                            Ok(Box::new(r))
                        }
                        None => Err(ImageError::NotFound(format!("layer {i} of the build"))),
                    }
                },
                parent.as_deref(),
            );
            let id = match writer {
                Some(h) => first_cause(id, join_writer(h))?,
                None => id?,
            };
            Ok::<_, BuildError>((id, cfg))
        })
        .await?;
        *config = out.1;
        Ok(out.0)
    }
}

/// The `AS name` of a FROM, lower case.
fn stage_name(from: &Instruction) -> Option<String> {
    let w: Vec<&str> = from.args.split_whitespace().collect();
    (w.len() == 3 && w[1].eq_ignore_ascii_case("as")).then(|| w[2].to_ascii_lowercase())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `80` → `80/tcp`, `8000-8002/udp` → each port.
fn expand_ports(w: &str) -> Result<Vec<String>, BuildError> {
    let (ports, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let bad = || BuildError::Syntax(format!("Invalid containerPort: {w}"));
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if a > b || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_ports_paths() {
        assert_eq!(duration_ns("30s").expect("d"), 30_000_000_000);
        assert_eq!(duration_ns("1m30s").expect("d"), 90_000_000_000);
        assert_eq!(duration_ns("500ms").expect("d"), 500_000_000);
        assert!(duration_ns("5x").is_err());
        assert_eq!(expand_ports("80").expect("p"), vec!["80/tcp"]);
        assert_eq!(expand_ports("53/udp").expect("p"), vec!["53/udp"]);
        assert_eq!(expand_ports("8000-8001").expect("p").len(), 2);
        assert!(expand_ports("x").is_err());
        assert_eq!(clean_abs("/a/b/../c/."), "/a/c");
        assert_eq!(clean_abs("/../x"), "/x");
    }
}
