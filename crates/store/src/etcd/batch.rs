//! Creates of the etcd backend, combined: creates that wait while earlier ones are in
//! flight go to etcd together as one transaction.
//!
//! Every transaction costs etcd far more than its puts (etcd 3.4 copies its whole pending
//! write buffer to evaluate the compares), so one create per transaction caps an API
//! server at about half of etcd's put rate. A combined transaction compares every key
//! absent and every guard at its revision, then puts every key: all or nothing, like the
//! single creates it replaces, except that the objects share one revision. When any
//! compare fails, each create of the batch is retried alone for its own answer.
//!
//! A create that finds nothing in flight goes alone at once from its caller's task, so a
//! lone client waits no longer than before.
//!
//! Objects created together share a revision, so their resourceVersions are equal.
//! Kubernetes clients compare the resourceVersions of one object, not across objects; a
//! client that resumes a watch from a shared revision gets all of that revision's events
//! again (the API server's watch resume), since it may have missed some of them.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, KvClient, Txn, TxnOp};
use tokio::sync::{Notify, oneshot};

use super::{failed_condition, header_revision, request_error};
use crate::StoreError;

/// Creates in one transaction, below etcd's default `--max-txn-ops` of 128.
const MAX_CREATES: usize = 64;
/// Bytes of values in one transaction, well below etcd's default request limit (1.5 MiB).
const MAX_BYTES: usize = 512 * 1024;
/// Longest wait of a batch for as many creates as the last one had (tokio's timer rounds
/// it up to its millisecond tick).
const LINGER: Duration = Duration::from_micros(500);

/// One create: `key` must be absent and, when `guard` is set, that key at that revision.
pub(super) struct Create {
    pub key: String,
    pub value: Vec<u8>,
    pub guard: Option<(String, i64)>,
}

type Reply = oneshot::Sender<Result<i64, StoreError>>;

/// The handle the store keeps. A create that finds nothing in flight writes alone, in its
/// caller's task; creates arriving meanwhile wait in `waiting` for a task that writes them
/// in batches until none is left.
#[derive(Clone)]
pub(super) struct Creates {
    shared: Arc<Shared>,
}

struct Shared {
    kv: KvClient,
    state: Mutex<State>,
    /// Told of every create put in `waiting`.
    arrived: Notify,
}

#[derive(Default)]
struct State {
    /// A transaction is in flight (or a task is gathering the next).
    busy: bool,
    waiting: VecDeque<(Create, Reply)>,
}

impl Creates {
    pub(super) fn new(kv: KvClient) -> Self {
        let shared = Shared {
            kv,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
        };
        Creates {
            shared: Arc::new(shared),
        }
    }

    /// Creates `create.key`, returning the revision that wrote it.
    pub(super) async fn create(&self, create: Create) -> Result<i64, StoreError> {
        let create = match self.enter(create) {
            Entry::Lead(create) => create,
            Entry::Wait(answer) => {
                self.shared.arrived.notify_one();
                return answer.await.map_err(|_| {
                    StoreError::Backend("the etcd create batch was dropped".into())
                })?;
            }
        };
        // Hands the waiting creates on when this one is done, or dropped mid-flight.
        let _lead = Lead(self.shared.clone());
        one(self.shared.kv.clone(), create).await
    }

    /// Queues `create` behind the transaction in flight, or gives it back to be written at
    /// once.
    fn enter(&self, create: Create) -> Entry {
        let mut state = self.shared.lock();
        if state.busy {
            let (reply, answer) = oneshot::channel();
            state.waiting.push_back((create, reply));
            return Entry::Wait(answer);
        }
        state.busy = true;
        Entry::Lead(create)
    }
}

/// The create being written alone; when it ends, the creates that arrived meanwhile go to a
/// task that writes them.
struct Lead(Arc<Shared>);

impl Drop for Lead {
    fn drop(&mut self) {
        let more = {
            let mut state = self.0.lock();
            state.busy = !state.waiting.is_empty();
            state.busy
        };
        if more {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(drain(self.0.clone()));
                }
                // No runtime left to write them: their callers are gone too.
                Err(_) => self.0.lock().busy = false,
            }
        }
    }
}

/// What a create does on arrival.
enum Entry {
    /// Nothing is in flight: write it now.
    Lead(Create),
    /// Wait for the answer of its batch.
    Wait(oneshot::Receiver<Result<i64, StoreError>>),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent through a panic elsewhere: take it back.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves waiting creates into `batch` while it is open.
    fn gather(&self, batch: &mut Batch) {
        fill(&mut self.lock(), batch);
    }

    /// A batch of the waiting creates, or `None` (and no longer busy) when none waits.
    fn next_batch(&self) -> Option<Batch> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.busy = false;
            return None;
        }
        let mut batch = Batch::default();
        fill(&mut state, &mut batch);
        Some(batch)
    }
}

fn fill(state: &mut State, batch: &mut Batch) {
    while batch.open() {
        let Some(next) = state.waiting.pop_front() else {
            break;
        };
        if let Some(back) = batch.add(next) {
            state.waiting.push_front(back);
        }
    }
}

/// Writes the waiting creates in batches until none is left, one transaction at a time (a
/// second in flight measured worse: it halves the batches, and etcd pays per transaction).
///
/// Clients answered by one transaction send their next creates while the next transaction
/// is already in flight, so with steady clients the batches alternate between halves of
/// them. A batch smaller than the last one therefore waits up to [`LINGER`] for the rest,
/// as a database's group commit does; a lone client never gets here.
async fn drain(shared: Arc<Shared>) {
    let mut last = 1;
    while let Some(mut batch) = shared.next_batch() {
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.open() && batch.creates.len() < last {
            if tokio::time::timeout_at(deadline, shared.arrived.notified())
                .await
                .is_err()
            {
                break;
            }
            shared.gather(&mut batch);
        }
        last = batch.creates.len();
        run(shared.kv.clone(), batch.creates).await;
    }
}

/// Creates gathered for one transaction.
#[derive(Default)]
struct Batch {
    creates: Vec<(Create, Reply)>,
    keys: HashSet<String>,
    bytes: usize,
    full: bool,
}

impl Batch {
    fn open(&self) -> bool {
        !self.full && self.creates.len() < MAX_CREATES
    }

    /// Adds `next`, or closes the batch and gives `next` back for the following one.
    fn add(&mut self, next: (Create, Reply)) -> Option<(Create, Reply)> {
        // etcd refuses a transaction that writes a key twice; the second waits. A value
        // over the byte limit still goes, alone.
        let over = !self.creates.is_empty() && self.bytes + next.0.value.len() > MAX_BYTES;
        if self.keys.contains(&next.0.key) || over {
            self.full = true;
            return Some(next);
        }
        self.keys.insert(next.0.key.clone());
        self.bytes += next.0.value.len();
        self.creates.push(next);
        None
    }
}

async fn run(kv: KvClient, mut batch: Vec<(Create, Reply)>) {
    if batch.len() > 1 {
        // When a compare failed (or etcd refused the whole), each alone says which and why.
        if let Some(revision) = combined(kv.clone(), &batch).await {
            for (_, reply) in batch {
                let _ = reply.send(Ok(revision));
            }
            return;
        }
    }
    let alone = batch.drain(..).map(|(create, reply)| {
        let kv = kv.clone();
        async move {
            let _ = reply.send(one(kv, create).await);
        }
    });
    futures::future::join_all(alone).await;
}

/// One transaction for the whole batch: the revision, or `None` if a compare failed or
/// etcd refused it.
async fn combined(mut kv: KvClient, batch: &[(Create, Reply)]) -> Option<i64> {
    let mut compares = Vec::with_capacity(batch.len() + 1);
    let mut guards = HashSet::new();
    for (create, _) in batch {
        if let Some((guard, revision)) = &create.guard
            && guards.insert((guard.as_str(), *revision))
        {
            compares.push(Compare::mod_revision(
                guard.as_str(),
                CompareOp::Equal,
                *revision,
            ));
        }
        compares.push(Compare::create_revision(
            create.key.as_str(),
            CompareOp::Equal,
            0,
        ));
    }
    let puts: Vec<TxnOp> = batch
        .iter()
        .map(|(create, _)| TxnOp::put(create.key.as_str(), create.value.clone(), None))
        .collect();
    let resp = kv
        .txn(Txn::new().when(compares).and_then(puts))
        .await
        .ok()?;
    if resp.succeeded() {
        header_revision(&resp).ok()
    } else {
        None
    }
}

/// A create alone, with the precise failure: the key exists, or the guard moved.
async fn one(mut kv: KvClient, create: Create) -> Result<i64, StoreError> {
    let Create { key, value, guard } = create;
    let Some((guard, guard_revision)) = guard else {
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), value, None)]);
        let resp = kv.txn(txn).await.map_err(request_error)?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists(key));
        }
        return header_revision(&resp);
    };
    let txn = Txn::new()
        .when([
            Compare::mod_revision(guard.as_str(), CompareOp::Equal, guard_revision),
            Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
        ])
        .and_then([TxnOp::put(key.as_str(), value, None)])
        .or_else([TxnOp::get(guard.as_str(), None)]);
    let resp = kv.txn(txn).await.map_err(request_error)?;
    if resp.succeeded() {
        return header_revision(&resp);
    }
    match failed_condition(&resp, &guard, Some(guard_revision)) {
        // The guard held, so the key exists.
        StoreError::Backend(_) => Err(StoreError::AlreadyExists(key)),
        StoreError::Conflict { actual, .. } if actual == guard_revision => {
            Err(StoreError::AlreadyExists(key))
        }
        StoreError::NotFound(_) => Err(StoreError::Conflict {
            key: guard,
            expected: guard_revision,
            actual: 0,
        }),
        other => Err(other),
    }
}
