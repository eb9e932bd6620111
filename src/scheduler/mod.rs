//! The durable scheduler, one file per concern: intake (event → runs, in the
//! caller's transaction), the queue (the only writer of `job_runs`: enqueue, claim,
//! named transitions, backoff), the worker (the loop), run history for pages, and
//! retention.

pub mod intake;
pub mod queue;
pub mod retention;
pub mod runs;
pub mod status;
pub mod worker;
