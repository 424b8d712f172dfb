//! The steps that touch the file system: RUN (a container of the build, then a commit) and
//! COPY/ADD (sources resolved in the context or another stage, keyed by content, written as a
//! layer), with the cache lookups they share.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use berth_image::ImageError;
use berth_image::digest::short_id;
use berth_image::{History, ImageConfig};

use super::{BuildRun, Change, LayerProducer, Stage, clean_abs, now};
use crate::BuildError;
use crate::copy::{self, CopySpec, SourceRoot};
use crate::dockerfile::{Form, Instruction};
use crate::lex;
use crate::run::{self, RunSpec, blocking};
use crate::tree::FsTree;
use crate::view::ImageView;

impl BuildRun<'_> {
    pub(super) async fn run(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        ins.check_flags(&["network"])?;
        let (argv, shown) = match ins.form() {
            Form::Exec(v) => {
                let shown = v.join(" ");
                (v, shown)
            }
            Form::Shell(s) => {
                let script = match ins.heredocs.first() {
                    Some(h) if s.trim_start().starts_with("<<") => h.body.clone(),
                    _ => s,
                };
                let mut sh = st.shell();
                sh.push(script);
                let shown = sh.join(" ");
                (sh, shown)
            }
        };
        let args: Vec<(String, String)> = st
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let created_by = if args.is_empty() {
            shown.clone()
        } else {
            let list = args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            format!("|{} {list} {shown}", args.len())
        };
        let key = format!(
            "run\n{created_by}\n{}",
            serde_json::to_string(&argv).unwrap_or_default()
        );
        if !self.opts.no_cache
            && let Some(id) = self.b.cache.get(st.image.as_deref(), &key)
            && let Some(config) = self.load(&id).await
        {
            self.say(" ---> Using cache\n");
            self.say(format!(" ---> {}\n", &short_id(&id)[..12]));
            st.config = config;
            st.image = Some(id);
            return Ok(());
        }
        let Some(parent) = st.image.clone() else {
            return Err(BuildError::Syntax(format!(
                "The command '{shown}' cannot run: the image has no filesystem (FROM scratch)"
            )));
        };
        let mut env = st.env();
        for (k, v) in &args {
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|(a, _)| a) == Some(k.as_str()))
            {
                env.push(format!("{k}={v}"));
            }
        }
        let d = st.config.config.clone().unwrap_or_default();
        let spec = RunSpec {
            args: argv,
            env,
            user: d.user.clone().unwrap_or_default(),
            workdir: d.working_dir.clone().unwrap_or_default(),
            network: self.b.network.clone(),
        };
        let work = self.b.root.join("tmp");
        let t0 = std::time::Instant::now();
        let (cid, code) = run::run(
            &self.b.store,
            &self.b.runtime,
            &work,
            &parent,
            &spec,
            &self.out,
        )
        .await?;
        // The step's image is the container's changes on the parent with the build's config
        // and history, registered once: the changes tar of the stopped container is piped
        // into the store, never written to a file or committed as an image of its own.
        let t1 = std::time::Instant::now();
        let committed = if code == 0 {
            self.commit_run(st, &cid, created_by).await
        } else {
            Err(BuildError::RunFailed {
                command: shown.clone(),
                code,
            })
        };
        tracing::debug!(
            container = %cid,
            run_ms = (t1 - t0).as_millis() as u64,
            commit_ms = t1.elapsed().as_millis() as u64,
            "build RUN step"
        );
        // The container (its layer is in the store by now) goes while the next steps run;
        // the build waits for every removal before it ends.
        let (s, r, c) = (self.b.store.clone(), self.b.runtime.clone(), cid.clone());
        self.removals.push(tokio::spawn(async move {
            run::remove(&s, &r, &c).await;
        }));
        self.say(format!(
            " ---> Removed intermediate container {}\n",
            &cid[..12]
        ));
        let (id, config) = committed?;
        self.b.cache.put(st.image.as_deref(), &key, &id)?;
        self.say(format!(" ---> {}\n", &short_id(&id)[..12]));
        st.config = config;
        st.image = Some(id);
        Ok(())
    }

    /// Registers the image of a RUN step from its (stopped) container.
    async fn commit_run(
        &self,
        st: &Stage,
        cid: &str,
        created_by: String,
    ) -> Result<(String, ImageConfig), BuildError> {
        let (s, c) = (self.b.store.clone(), cid.to_string());
        let produce: LayerProducer =
            Arc::new(move |out: &mut dyn std::io::Write| Ok(s.write_container_changes(&c, out)?));
        let mut config = st.config.clone();
        let ts = now();
        config.created = Some(ts.clone());
        let history = History {
            created: Some(ts),
            created_by: Some(created_by),
            ..History::default()
        };
        let id = self
            .register(&mut config, history, Some(produce), st.image.clone())
            .await?;
        Ok((id, config))
    }

    pub(super) async fn copy(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        let kw = ins.keyword.clone();
        if kw == "COPY" {
            ins.check_flags(&["from", "chown", "chmod", "link", "parents", "exclude"])?;
        } else {
            ins.check_flags(&[
                "chown",
                "chmod",
                "link",
                "keep-git-dir",
                "checksum",
                "exclude",
            ])?;
        }
        let vars = st.vars();
        let e = self.escape;
        let mut words = match ins.form() {
            Form::Exec(v) => v
                .iter()
                .map(|s| lex::word(s, &vars, e))
                .collect::<Result<Vec<_>, _>>()?,
            Form::Shell(s) => lex::words(&s, &vars, e)?,
        };
        if words.len() < 2 {
            return Err(BuildError::Syntax(format!(
                "{kw} requires at least two arguments"
            )));
        }
        let dest_raw = words.pop().unwrap_or_default();
        let (urls, locals): (Vec<String>, Vec<String>) = words
            .into_iter()
            .partition(|w| w.starts_with("http://") || w.starts_with("https://"));
        if kw == "COPY" && !urls.is_empty() {
            return Err(BuildError::Copy(format!(
                "COPY failed: source can't be a URL for COPY: {}",
                urls[0]
            )));
        }
        let mut dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", st.workdir())
        };
        let trailing = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        dest = clean_abs(&dest);
        if trailing && !dest.ends_with('/') {
            dest.push('/');
        }
        let view = {
            let s = self.b.store.clone();
            let img = st.image.clone();
            blocking(move || Ok(ImageView::of(&s, img.as_deref()))).await?
        };
        let chown = match ins.flag("chown") {
            Some(c) => {
                let c = lex::word(c, &vars, e)?;
                Some(
                    view.user_ids(&c)
                        .map(|(u, g, _)| (u, g))
                        .map_err(|m| BuildError::Copy(format!("{kw} failed: {m}")))?,
                )
            }
            None => None,
        };
        let chmod = ins.flag("chmod").map(copy::parse_chmod).transpose()?;
        let mut downloads = Vec::new();
        let fetch_dir = self.b.tmp("fetch");
        let _fetched = RemoveOnDrop(fetch_dir.clone());
        for (i, u) in urls.iter().enumerate() {
            let (u2, dir) = (u.clone(), fetch_dir.join(i.to_string()));
            downloads.push(blocking(move || crate::fetch::download(&u2, &dir)).await?);
        }
        let spec = CopySpec {
            keyword: kw.clone(),
            sources: locals,
            dest: dest.clone(),
            chown,
            chmod,
            downloads,
        };
        // --from: a stage (by name or index) or an image, mounted read-only for the copy.
        let from = ins
            .flag("from")
            .map(|f| lex::word(f, &vars, e))
            .transpose()?;
        let mut mounted: Option<String> = None;
        let root = match &from {
            None => SourceRoot {
                tree: Arc::new(self.ctx.clone()),
                is_context: true,
            },
            Some(f) => {
                let image = self.stage_or_image(f).await?;
                let snap_id = hex::encode(rand::random::<[u8; 32]>());
                let (s, sid) = (self.b.store.clone(), snap_id.clone());
                let snap = blocking(move || Ok(s.prepare_snapshot(&sid, &image)?)).await?;
                mounted = Some(snap_id);
                SourceRoot {
                    tree: Arc::new(FsTree::new(&snap.merged)),
                    is_context: false,
                }
            }
        };
        let result = self.copy_layer(st, ins, spec, root, view, from).await;
        if let Some(sid) = mounted {
            let s = self.b.store.clone();
            let _ = blocking(move || Ok(s.remove_snapshot(&sid)?)).await;
        }
        result
    }

    /// The cache lookup by the sources' content, then (on a miss) the layer of a COPY/ADD.
    async fn copy_layer(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        spec: CopySpec,
        root: SourceRoot,
        view: ImageView,
        from: Option<String>,
    ) -> Result<(), BuildError> {
        let t0 = std::time::Instant::now();
        let (sources, kind, hash) = {
            let (spec, root) = (spec.clone(), root.clone());
            blocking(move || {
                let sources = copy::resolve_sources(&root, &spec)?;
                let hash = copy::content_key(&*root.tree, &sources)?;
                let kind = if sources.len() == 1 && copy::is_file(&*root.tree, &sources[0]) {
                    "file"
                } else {
                    "multi"
                };
                Ok((sources, kind.to_string(), hash))
            })
            .await?
        };
        let from_part = from.map(|f| format!(" from {f}")).unwrap_or_default();
        let created_by = format!(
            "/bin/sh -c #(nop) {} {kind}:{hash} in {} ",
            spec.keyword, spec.dest
        );
        let key = format!(
            "copy\n{created_by}\n{:?}\n{:?}\n{from_part}\n{}",
            spec.chown, spec.chmod, ins.original
        );
        if self.cached(st, &key).await {
            return Ok(());
        }
        // A miss: the layer tar is made from the sources as they are (the context's straight
        // from its spool, never extracted) and piped into the store, which keeps the blob,
        // extracts it and reports its diff id in the same pass.
        let t1 = std::time::Instant::now();
        let tree = root.tree.clone();
        let produce: LayerProducer = Arc::new(move |out: &mut dyn std::io::Write| {
            copy::write_layer(out, &*tree, &sources, &spec, &view)
        });
        let result = self
            .step_result(st, &key, created_by, Change::Layer(produce))
            .await;
        tracing::debug!(
            key_ms = (t1 - t0).as_millis() as u64,
            layer_ms = t1.elapsed().as_millis() as u64,
            "build COPY layer"
        );
        result
    }

    /// Takes the step's image from the cache if there is one (prints `Using cache`).
    pub(super) async fn cached(&mut self, st: &mut Stage, key: &str) -> bool {
        if self.opts.no_cache {
            return false;
        }
        let Some(id) = self.b.cache.get(st.image.as_deref(), key) else {
            return false;
        };
        let Some(config) = self.load(&id).await else {
            return false;
        };
        self.say(" ---> Using cache\n");
        self.say(format!(" ---> {}\n", &short_id(&id)[..12]));
        st.config = config;
        st.image = Some(id);
        true
    }

    /// The image a `--from` names: a stage by name or index, else an image.
    async fn stage_or_image(&self, f: &str) -> Result<String, BuildError> {
        let lower = f.to_ascii_lowercase();
        let stage = self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
            .or_else(|| f.parse::<usize>().ok().and_then(|i| self.stages.get(i)));
        if let Some((_, img)) = stage {
            return img.clone().ok_or_else(|| {
                BuildError::Copy(format!(
                    "invalid from flag value {f}: the stage has no filesystem"
                ))
            });
        }
        let (s, name) = (self.b.store.clone(), f.to_string());
        blocking(move || match s.resolve(&name) {
            Ok(i) => Ok(i.id),
            Err(ImageError::NotFound(_)) | Err(ImageError::InvalidReference(_)) => Err(BuildError::NotFound(format!(
                "invalid from flag value {name}: pull access denied for {name}, repository does not exist or may require 'docker login': No such image: {name}"
            ))),
            Err(e) => Err(e.into()),
        })
        .await
    }
}

/// Removes a temporary directory when dropped (early returns included).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
