//! The durable scheduler, one file per concern: intake (event → runs, in the
//! caller's transaction), enqueue and the queue (the only writers of `job_runs`:
//! putting runs on it; claim, named transitions, backoff), the worker (the loop),
//! run history for pages, staff's retry and cancel, and retention.

pub mod enqueue;
pub mod intake;
pub mod queue;
pub mod retention;
pub mod runs;
pub mod staff;
pub mod status;
pub mod worker;
