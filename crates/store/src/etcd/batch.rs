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
//! A create that finds nothing in flight goes alone at once, so a lone client waits no
//! longer than before.
//!
//! Objects created together share a revision, so their resourceVersions are equal.
//! Kubernetes clients compare the resourceVersions of one object, not across objects; a
//! client that resumes a watch from a shared revision gets all of that revision's events
//! again (the API server's watch resume), since it may have missed some of them.

use std::collections::HashSet;

use etcd_client::{Compare, CompareOp, KvClient, Txn, TxnOp};
use tokio::sync::{mpsc, oneshot};

use super::{failed_condition, header_revision, request_error};
use crate::StoreError;

/// Creates in one transaction, below etcd's default `--max-txn-ops` of 128.
const MAX_CREATES: usize = 64;
/// Bytes of values in one transaction, well below etcd's default request limit (1.5 MiB).
const MAX_BYTES: usize = 512 * 1024;

/// One create: `key` must be absent and, when `guard` is set, that key at that revision.
pub(super) struct Create {
    pub key: String,
    pub value: Vec<u8>,
    pub guard: Option<(String, i64)>,
}

type Reply = oneshot::Sender<Result<i64, StoreError>>;

/// The handle the store keeps: sends creates to the combining task.
#[derive(Clone)]
pub(super) struct Creates {
    queue: mpsc::UnboundedSender<(Create, Reply)>,
}

impl Creates {
    /// Starts the combining task on `kv`; it ends when the last handle is dropped.
    pub(super) fn start(kv: KvClient) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(combine(kv, rx));
        Creates { queue }
    }

    /// Creates `create.key`, returning the revision that wrote it.
    pub(super) async fn create(&self, create: Create) -> Result<i64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((create, reply))
            .map_err(|_| StoreError::Backend("the etcd create queue is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the etcd create queue dropped a create".into()))?
    }
}

/// Takes the creates that gathered while the previous transaction was in flight, up to
/// the limits, and writes them as one. One transaction at a time measured best: a second in
/// flight halves the batches and etcd pays per transaction.
async fn combine(kv: KvClient, mut rx: mpsc::UnboundedReceiver<(Create, Reply)>) {
    let mut held: Option<(Create, Reply)> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match rx.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut keys = HashSet::from([first.0.key.clone()]);
        let mut bytes = first.0.value.len();
        let mut batch = vec![first];
        while batch.len() < MAX_CREATES {
            let Ok(next) = rx.try_recv() else { break };
            // etcd refuses a transaction that writes a key twice; the second waits.
            if keys.contains(&next.0.key) || bytes + next.0.value.len() > MAX_BYTES {
                held = Some(next);
                break;
            }
            keys.insert(next.0.key.clone());
            bytes += next.0.value.len();
            batch.push(next);
        }
        run(kv.clone(), batch).await;
    }
}

async fn run(kv: KvClient, mut batch: Vec<(Create, Reply)>) {
    if batch.len() > 1 {
        // When a compare failed (or etcd refused the whole), each alone says which and why.
        if let Ok(Some(revision)) = combined(kv.clone(), &batch).await {
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

/// One transaction for the whole batch: the revision, or `None` if a compare failed.
async fn combined(mut kv: KvClient, batch: &[(Create, Reply)]) -> Result<Option<i64>, StoreError> {
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
        .map_err(request_error)?;
    if resp.succeeded() {
        header_revision(&resp).map(Some)
    } else {
        Ok(None)
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
