//! The member table: who is in the cluster, at which incarnation, in which state.
//!
//! Every change goes through `MemberTable::apply_member` (crate-private), ordered by (incarnation, state
//! precedence). Tombstones (failed, left) stay until reaped so stale gossip cannot bring a
//! member back.

mod addr;
mod record;
mod state;
mod table;
mod tags;

pub use addr::CompactAddr;
pub use record::{MemberInfo, SyncEntry, Update, MAX_NAME};
pub use state::MemberState;
#[cfg(test)]
pub(crate) use table::bucket_of;
pub use table::Member;
pub(crate) use table::{in_part, push_compact, Applied, LivePeers, MemberTable, SlotMove};
pub(crate) use tags::key_ok;
pub use tags::{TagError, Tags, MAX_TAGS, MAX_TAGS_TOTAL, MAX_TAG_KEY, MAX_TAG_VALUE};
