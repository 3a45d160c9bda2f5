//! `fsutil.types` (`Packet`, `Stat`): the messages of the file sync a client's session serves
//! (`moby.filesync.v1.FileSync/DiffCopy`), from tonistiigi/fsutil's `types/wire.proto` and
//! `types/stat.proto`.

use std::collections::HashMap;

/// What a [`Packet`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PacketType {
    /// Sender → receiver: one entry of the walk; an empty stat ends the walk.
    Stat = 0,
    /// Receiver → sender: send the contents of the entry with this ID (its index in the walk).
    Req = 1,
    /// Sender → receiver: a chunk of the file with this ID; an empty chunk ends the file.
    Data = 2,
    /// Either way: done (the receiver sends it, the sender answers it).
    Fin = 3,
    /// Either way: a human-readable error in `data`.
    Err = 4,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Packet {
    #[prost(enumeration = "PacketType", tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub stat: Option<Stat>,
    #[prost(uint32, tag = "3")]
    pub id: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

impl Packet {
    pub fn kind(&self) -> Option<PacketType> {
        PacketType::try_from(self.r#type).ok()
    }

    pub fn req(id: u32) -> Self {
        Packet {
            r#type: PacketType::Req as i32,
            stat: None,
            id,
            data: Vec::new(),
        }
    }

    pub fn fin() -> Self {
        Packet {
            r#type: PacketType::Fin as i32,
            stat: None,
            id: 0,
            data: Vec::new(),
        }
    }

    pub fn err(msg: &str) -> Self {
        Packet {
            r#type: PacketType::Err as i32,
            stat: None,
            id: 0,
            data: msg.as_bytes().to_vec(),
        }
    }
}

/// One file's metadata. `mode` is Go's `os.FileMode` (type bits high, permissions low), not a
/// unix `st_mode`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stat {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(uint32, tag = "2")]
    pub mode: u32,
    #[prost(uint32, tag = "3")]
    pub uid: u32,
    #[prost(uint32, tag = "4")]
    pub gid: u32,
    #[prost(int64, tag = "5")]
    pub size: i64,
    #[prost(int64, tag = "6")]
    pub mod_time: i64,
    #[prost(string, tag = "7")]
    pub linkname: String,
    #[prost(int64, tag = "8")]
    pub devmajor: i64,
    #[prost(int64, tag = "9")]
    pub devminor: i64,
    #[prost(map = "string, bytes", tag = "10")]
    pub xattrs: HashMap<String, Vec<u8>>,
}

/// Go's `os.FileMode` type bits.
pub mod mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const IRREGULAR: u32 = 1 << 19;
    /// `os.ModeType`: any of these makes an entry something other than a regular file.
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;
    pub const PERM: u32 = 0o777;
}
