//! The daemon's side of the shim protocol, on tokio: one connection per request (so any
//! number of tasks may wait at once) and one connection per attached stream.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::protocol::{self, Reply, Request, StreamKind};

/// Longest path `sun_path` takes (108 bytes with the terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// Connects to a unix socket, through `/proc/self/fd/<dir>/<name>` when the path is too long
/// for `sun_path`.
pub async fn connect(path: &Path) -> io::Result<UnixStream> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return UnixStream::connect(path).await;
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no name"))?;
    let dir = std::fs::File::open(parent)?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    let stream = UnixStream::connect(&short).await;
    drop(dir);
    stream
}

/// Sends one request and reads its reply. `Ok(None)` when the shim closed the connection
/// without answering (it exited meanwhile).
pub async fn call(socket: &Path, req: &Request) -> io::Result<Option<Reply>> {
    let stream = connect(socket).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(&protocol::encode(req)).await?;
    let mut reader = BufReader::new(read);
    read_reply(&mut reader).await
}

async fn read_reply(reader: &mut BufReader<OwnedReadHalf>) -> io::Result<Option<Reply>> {
    let mut line = String::new();
    let n = reader.read_line(&mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An attached stream: the reader (with anything read past the reply) and the writer.
pub struct Attached {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

/// Attaches to one stream; `Ok(Err(reply))` when the shim refused.
pub async fn attach(
    socket: &Path,
    exec_id: Option<&str>,
    stream: StreamKind,
) -> io::Result<Result<Attached, Option<Reply>>> {
    let conn = connect(socket).await?;
    let (read, mut writer) = conn.into_split();
    let req = Request::Attach {
        exec_id: exec_id.map(str::to_string),
        stream,
    };
    writer.write_all(&protocol::encode(&req)).await?;
    let mut reader = BufReader::new(read);
    match read_reply(&mut reader).await? {
        Some(Reply::Ok) => Ok(Ok(Attached { reader, writer })),
        other => Ok(Err(other)),
    }
}
