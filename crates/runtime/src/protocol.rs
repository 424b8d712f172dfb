//! The shim's control protocol: one JSON object per line. A client sends a [`Request`]; the
//! shim answers with one [`Reply`] line (for `wait` once the process has exited). An `attach`
//! request turns its connection into a raw byte stream after the `ok` reply: output flows
//! from the shim for `stdout`/`stderr`, input flows to the shim for `stdin`.

use serde::{Deserialize, Serialize};

use crate::{ContainerState, ExecConfig, ExitStatus, RuntimeError};

/// Longest request line the shim accepts.
pub const MAX_LINE: usize = 1 << 20;

/// Which stream of a process an attach connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// Input to the process.
    Stdin,
    /// Standard output, or the terminal's output.
    Stdout,
    /// Standard error (not with a terminal).
    Stderr,
}

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Current state.
    State,
    /// Start the created container; replies with its pid.
    Start,
    /// Reply once the container has exited.
    Wait,
    /// Signal the init process (`all`: every process of the container).
    Kill {
        /// Signal number.
        signal: i32,
        /// Signal every process in the container's cgroup.
        all: bool,
    },
    /// Freeze the container.
    Pause,
    /// Thaw the container.
    Resume,
    /// Set the terminal size of the container (`exec_id: None`) or an exec.
    Resize {
        /// The exec, or `None` for the container.
        exec_id: Option<String>,
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Register an exec (not started).
    ExecCreate {
        /// The exec's configuration.
        exec: ExecConfig,
    },
    /// Start a registered exec; replies with its pid.
    ExecStart {
        /// The exec's id.
        exec_id: String,
    },
    /// Reply once the exec has exited.
    ExecWait {
        /// The exec's id.
        exec_id: String,
    },
    /// Turn this connection into one stream of the container (`exec_id: None`) or an exec.
    Attach {
        /// The exec, or `None` for the container.
        exec_id: Option<String>,
        /// The stream this connection carries.
        stream: StreamKind,
    },
}

/// Why a request failed, so the client can rebuild the matching [`RuntimeError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such container or exec.
    NotFound,
    /// The process is not running.
    NotRunning,
    /// The OCI runtime refused to create or start the process.
    Create {
        /// The executable does not exist.
        exec_not_found: bool,
    },
    /// Anything else.
    Other,
}

/// The shim's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// A process' host pid.
    Pid {
        /// The pid.
        pid: u32,
    },
    /// The container's state.
    State {
        /// The state.
        state: ContainerState,
    },
    /// How a process ended.
    Exit {
        /// The exit status.
        exit: ExitStatus,
    },
    /// The request failed.
    Error {
        /// Which kind of failure.
        kind: ErrorKind,
        /// What users see.
        message: String,
    },
}

impl Reply {
    /// An error reply.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Reply::Error {
            kind,
            message: message.into(),
        }
    }

    /// Converts an error reply into the runtime error it stands for.
    pub fn into_error(kind: ErrorKind, message: String, id: &str) -> RuntimeError {
        match kind {
            ErrorKind::NotFound => RuntimeError::NotFound(if message.is_empty() {
                id.to_string()
            } else {
                message
            }),
            ErrorKind::NotRunning => RuntimeError::NotRunning(id.to_string()),
            ErrorKind::Create { exec_not_found } => RuntimeError::Create {
                message,
                exec_not_found,
            },
            ErrorKind::Other => RuntimeError::Other(message),
        }
    }
}

/// Encodes a message as one line.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain enums cannot fail; an empty object keeps the stream well formed.
    let mut line = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply_lines_round_trip() {
        let req = Request::Attach {
            exec_id: Some("e1".into()),
            stream: StreamKind::Stderr,
        };
        let line = encode(&req);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: Request = serde_json::from_slice(&line).expect("decode");
        assert_eq!(back, req);
        let reply = Reply::error(
            ErrorKind::Create {
                exec_not_found: true,
            },
            "nope",
        );
        let back: Reply = serde_json::from_slice(&encode(&reply)).expect("decode");
        assert_eq!(back, reply);
        let text = String::from_utf8(encode(&Request::Kill {
            signal: 9,
            all: false,
        }))
        .expect("utf8");
        assert_eq!(text, "{\"op\":\"kill\",\"signal\":9,\"all\":false}\n");
    }
}
