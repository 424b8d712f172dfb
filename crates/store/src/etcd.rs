//! The etcd backend: the same [`Store`] on one or more etcd servers through `etcd-client`.
//!
//! Keys are stored under the names given. Create is a transaction that requires
//! `create_revision == 0`; update and delete compare `mod_revision` when a revision is
//! expected (else `create_revision > 0`, so a missing key is `NotFound`); lists are ranges with
//! a limit at a revision; watches start at `from + 1` with previous values and progress
//! notifications.

mod batch;
mod watch;

use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions,
    KvClient, TxnOp, TxnOpResponse, TxnResponse,
};
use tracing::{debug, info};

use crate::range::{key_after, prefix_end};
use crate::{KeyValue, ListOptions, ListResult, Store, StoreError, WatchStream};

/// Failures of the etcd backend.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint was given.
    #[error("no etcd endpoint given")]
    NoEndpoints,
    /// The client could not connect.
    #[error("cannot connect to etcd at {endpoints}")]
    Connect {
        /// The endpoints, comma separated.
        endpoints: String,
        /// What the client said.
        #[source]
        source: etcd_client::Error,
    },
    /// A request failed.
    #[error("etcd request failed")]
    Request(#[source] etcd_client::Error),
    /// A response lacked a part etcd always sends.
    #[error("etcd response without {0}")]
    Malformed(&'static str),
}

impl From<EtcdError> for StoreError {
    fn from(err: EtcdError) -> Self {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        StoreError::Backend(message)
    }
}

/// Largest response decoded from etcd (bytes).
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// How etcd words a read below its compaction point.
const COMPACTED_MESSAGE: &str = "required revision has been compacted";

/// Whether `err` says the revision asked for is compacted.
fn is_compacted(err: &etcd_client::Error) -> bool {
    matches!(err, etcd_client::Error::GRpcStatus(status) if status.message().contains(COMPACTED_MESSAGE))
}

fn request_error(err: etcd_client::Error) -> StoreError {
    EtcdError::Request(err).into()
}

/// A [`Store`] on etcd.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    kv: KvClient,
    creates: batch::Creates,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the etcd servers at `endpoints` (URLs such as `http://127.0.0.1:2379`).
    pub async fn connect<S: AsRef<str>>(endpoints: &[S]) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(EtcdError::NoEndpoints.into());
        }
        let joined = endpoints
            .iter()
            .map(|e| e.as_ref())
            .collect::<Vec<_>>()
            .join(",");
        // No per-request timeout: it would also end long-lived watch streams.
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|source| EtcdError::Connect {
                endpoints: joined.clone(),
                source,
            })?;
        // kube-apiserver lifts gRPC's 4 MiB default too: a LIST of 10,000 objects is larger.
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let store = EtcdStore {
            creates: batch::Creates::new(kv.clone()),
            kv,
            client,
        };
        let revision = store.revision().await?;
        info!(endpoints = %joined, revision, "connected to etcd");
        Ok(store)
    }

    /// The oldest revision still readable, learnt from a watch at revision 1 that etcd
    /// cancels with the compaction point; `fallback` if etcd does not say within a second.
    async fn compact_revision(&self, fallback: i64) -> i64 {
        watch::compact_revision(&self.client, fallback).await
    }

    fn kv(&self) -> KvClient {
        self.kv.clone()
    }
}

/// `[prefix, end)` as etcd wants it: a non-empty start and `"\0"` for "to the last key".
fn etcd_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
    (start, end)
}

fn header_revision(resp: &TxnResponse) -> Result<i64, StoreError> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| EtcdError::Malformed("header").into())
}

fn key_value(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: kv.key_str().map_err(request_error)?.to_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// The error of a failed conditional write, from the `get` in its `or_else` branch.
fn failed_condition(resp: &TxnResponse, key: &str, expected: Option<i64>) -> StoreError {
    let current = resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
        _ => None,
    });
    match (current, expected) {
        (None, _) => StoreError::NotFound(key.to_owned()),
        (Some(actual), Some(expected)) => StoreError::Conflict {
            key: key.to_owned(),
            expected,
            actual,
        },
        // The key exists and nothing was expected: the compare cannot have failed.
        (Some(actual), None) => StoreError::Backend(format!(
            "etcd refused a write of {key} at revision {actual}"
        )),
    }
}

fn condition(key: &str, expected: Option<i64>) -> Compare {
    match expected {
        Some(revision) => Compare::mod_revision(key, CompareOp::Equal, revision),
        None => Compare::create_revision(key, CompareOp::Greater, 0),
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self.kv().get(key, None).await.map_err(request_error)?;
        resp.kvs().first().map(key_value).transpose()
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, StoreError> {
        let (mut start, end) = etcd_range(prefix);
        if let Some(after) = &options.start_after
            && after.as_bytes() >= start.as_slice()
        {
            start = key_after(after.as_bytes());
        }
        let mut get = GetOptions::new()
            .with_range(end)
            .with_limit(i64::try_from(options.limit).unwrap_or(i64::MAX));
        if let Some(revision) = options.revision {
            get = get.with_revision(revision);
        }
        let resp = match self.kv().get(start, Some(get)).await {
            Ok(resp) => resp,
            Err(err) if is_compacted(&err) => {
                let requested = options.revision.unwrap_or_default();
                return Err(StoreError::Compacted {
                    requested,
                    compacted: self.compact_revision(requested + 1).await,
                });
            }
            Err(err) => return Err(request_error(err)),
        };
        let items = resp
            .kvs()
            .iter()
            .map(key_value)
            .collect::<Result<Vec<_>, _>>()?;
        let revision = match options.revision {
            Some(revision) if revision > 0 => revision,
            _ => resp
                .header()
                .map(|h| h.revision())
                .ok_or(EtcdError::Malformed("header"))?,
        };
        Ok(ListResult {
            items,
            revision,
            more: resp.more(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let (start, end) = etcd_range(prefix);
        let get = GetOptions::new().with_range(end).with_count_only();
        let resp = self
            .kv()
            .get(start, Some(get))
            .await
            .map_err(request_error)?;
        Ok(resp.count())
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError> {
        self.creates
            .create(batch::Create {
                key: key.to_owned(),
                value,
                guard: None,
            })
            .await
    }

    async fn create_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        guard: &str,
        guard_revision: i64,
    ) -> Result<i64, StoreError> {
        self.creates
            .create(batch::Create {
                key: key.to_owned(),
                value,
                guard: Some((guard.to_owned(), guard_revision)),
            })
            .await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<i64>,
    ) -> Result<i64, StoreError> {
        let txn = etcd_client::Txn::new()
            .when([condition(key, expected)])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.kv().txn(txn).await.map_err(request_error)?;
        if !resp.succeeded() {
            return Err(failed_condition(&resp, key, expected));
        }
        header_revision(&resp)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError> {
        let txn = etcd_client::Txn::new()
            .when([condition(key, expected)])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.kv().txn(txn).await.map_err(request_error)?;
        if !resp.succeeded() {
            return Err(failed_condition(&resp, key, expected));
        }
        let revision = header_revision(&resp)?;
        let last = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
                _ => None,
            })
            .ok_or(EtcdError::Malformed("previous value of a delete"))?;
        let kv = KeyValue {
            mod_revision: revision,
            ..key_value(&last)?
        };
        Ok((revision, kv))
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchStream, StoreError> {
        if from > 0 {
            // A read at `from` fails exactly when `from` is below the compaction point, the
            // same rule as the SQLite backend (a watch at from + 1 would accept from + 1).
            let (start, end) = etcd_range(prefix);
            let get = GetOptions::new()
                .with_range(end)
                .with_count_only()
                .with_revision(from);
            match self.kv().get(start, Some(get)).await {
                Err(err) if is_compacted(&err) => {
                    return Err(StoreError::Compacted {
                        requested: from,
                        compacted: self.compact_revision(from + 1).await,
                    });
                }
                // A future revision is fine for a watch: it waits for it.
                Ok(_) | Err(_) => {}
            }
        }
        let (start, end) = etcd_range(prefix);
        watch::start(&self.client, start, end, from).await
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        let resp = self
            .kv()
            .get([0u8], Some(GetOptions::new().with_count_only()))
            .await
            .map_err(request_error)?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| EtcdError::Malformed("header").into())
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let options = CompactionOptions::new().with_physical();
        match self.kv().compact(revision, Some(options)).await {
            Ok(_) => {
                debug!(revision, "compacted etcd history");
                Ok(())
            }
            // Already compacted at or past this revision.
            Err(err) if is_compacted(&err) => Ok(()),
            Err(err) => Err(request_error(err)),
        }
    }
}
