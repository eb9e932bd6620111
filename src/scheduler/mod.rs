//! The queue, one file per concern: enqueue, the queue and complete (the only
//! writers of `job_runs`: putting runs on it; claim, named transitions, backoff;
//! done runs in batches), run history
//! for pages, staff's retry and cancel, the statuses, and pruning old runs
//! (asked by `crate::retention`).

pub mod complete;
pub mod enqueue;
pub mod queue;
pub mod runs;
pub mod staff;
pub mod status;
