//! The bounded pool that password hashing runs on.
//!
//! argon2 at OWASP parameters costs ~20 ms of one core and ~19 MiB per verification. Running
//! it on the async workers would stall every other request; running it unbounded would let
//! a burst of logins exhaust memory (security spec C12). So: at most `workers` hashes run at
//! once (on tokio's blocking threads), at most `queue` more wait, and anything beyond is
//! refused at once so the server can answer 503 with `Retry-After`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Refusal when the pool and its queue are full.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the password hashing pool is saturated")]
pub struct PoolBusy;

/// A hashing job failed to run (its thread panicked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("password hashing task failed: {0}")]
pub struct PoolTaskFailed(pub String);

/// A bounded pool for CPU-heavy password work.
#[derive(Debug, Clone)]
pub struct HashingPool {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    workers: usize,
}

/// A place in the pool's queue, taken before any other work of a login so that a saturated
/// pool is detected before counters are touched.
#[derive(Debug)]
pub struct PoolSlot {
    running: Arc<Semaphore>,
    _admitted: OwnedSemaphorePermit,
}

impl HashingPool {
    /// A pool running at most `workers` jobs at once with at most `queue` waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
            workers,
        }
    }

    /// A pool sized to the machine's cores, with `queue_per_worker` waiting places per core.
    pub fn sized_to_cores(queue_per_worker: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(cores, cores * queue_per_worker)
    }

    /// How many jobs run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Takes a place, or refuses at once when the pool is full.
    ///
    /// # Errors
    /// [`PoolBusy`] when `workers + queue` jobs are already admitted.
    pub fn try_enter(&self) -> Result<PoolSlot, PoolBusy> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| PoolBusy)?;
        Ok(PoolSlot {
            running: Arc::clone(&self.running),
            _admitted: admitted,
        })
    }

    /// Takes a place and runs `job` in one call.
    ///
    /// # Errors
    /// [`PoolBusy`] when full; the job's own result otherwise.
    pub async fn run<R, F>(&self, job: F) -> Result<Result<R, PoolTaskFailed>, PoolBusy>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot = self.try_enter()?;
        Ok(slot.run(job).await)
    }
}

impl PoolSlot {
    /// Waits for a worker, then runs `job` on a blocking thread (the tracing span follows).
    ///
    /// # Errors
    /// [`PoolTaskFailed`] if the job panicked.
    pub async fn run<R, F>(self, job: F) -> Result<R, PoolTaskFailed>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let waiting = sesame_metrics::HashingWait::begin();
        let _running = self
            .running
            .acquire_owned()
            .await
            .map_err(|e| PoolTaskFailed(e.to_string()))?;
        waiting.end();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(job))
            .await
            .map_err(|e| PoolTaskFailed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_runs_more_than_workers_and_refuses_beyond_the_queue() {
        let pool = HashingPool::new(2, 3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut slots = Vec::new();
        for _ in 0..5 {
            slots.push(pool.try_enter().expect("5 = 2 workers + 3 queued"));
        }
        assert!(pool.try_enter().is_err(), "the sixth must be refused");
        let jobs: Vec<_> = slots
            .into_iter()
            .map(|slot| {
                let running = Arc::clone(&running);
                let peak = Arc::clone(&peak);
                tokio::spawn(slot.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert!(pool.try_enter().is_ok(), "places are given back");
    }
}
