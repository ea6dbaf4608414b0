//! The bounded pool that password hashing runs on.
//!
//! argon2 at OWASP parameters costs ~20 ms of one core and ~19 MiB per verification. Running
//! it on the async workers would stall every other request; running it unbounded would let
//! a burst of logins exhaust memory (security spec C12). So: the jobs run on `workers`
//! dedicated threads (one per core by default), at most `queue` more wait, and anything
//! beyond is refused at once so the server can answer 503 with `Retry-After`.
//!
//! Dedicated threads rather than tokio's blocking pool: each keeps one argon2 working buffer
//! for its whole life ([`keep_working_memory_on_this_thread`]), so the memory the pool holds
//! is `workers` buffers, whatever the load. On tokio's blocking pool, which grows to hundreds
//! of threads under a burst, glibc kept a freed 19 MiB buffer per thread (1.6 GB measured).

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::hasher::keep_working_memory_on_this_thread;

/// Refusal when the pool and its queue are full.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the password hashing pool is saturated")]
pub struct PoolBusy;

/// A hashing job failed to run (its thread panicked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("password hashing task failed: {0}")]
pub struct PoolTaskFailed(pub String);

/// A job as the worker threads receive it.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool for CPU-heavy password work.
#[derive(Debug, Clone)]
pub struct HashingPool {
    jobs: mpsc::Sender<Job>,
    admitted: Arc<Semaphore>,
    workers: usize,
}

/// A place in the pool's queue, taken before any other work of a login so that a saturated
/// pool is detected before counters are touched.
#[derive(Debug)]
pub struct PoolSlot {
    jobs: mpsc::Sender<Job>,
    admitted: OwnedSemaphorePermit,
}

/// Runs jobs from `jobs` until every sender is gone (the pool was dropped).
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    keep_working_memory_on_this_thread();
    loop {
        // The lock is only held while waiting for the next job, never while running one.
        let next = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match next {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

impl HashingPool {
    /// A pool running at most `workers` jobs at once (on as many threads, started now) with
    /// at most `queue` waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("sesame-hash-{index}"))
                .spawn(move || work(&receiver));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start a password hashing thread"),
            }
        }
        if started == 0 {
            // The receiver is gone with the threads: every job fails at once (a 500), rather
            // than waiting forever.
            tracing::error!("no password hashing thread could be started");
        }
        Self {
            jobs: sender,
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
            jobs: self.jobs.clone(),
            admitted,
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
    /// Waits for a worker thread, then runs `job` there (the tracing span follows). The
    /// place in the queue is held until the job is done, even if the caller stops waiting
    /// (so abandoned jobs still count against the queue); a job whose caller is gone by the
    /// time a thread picks it up is skipped.
    ///
    /// # Errors
    /// [`PoolTaskFailed`] if the job panicked or no worker thread runs.
    pub async fn run<R, F>(self, job: F) -> Result<R, PoolTaskFailed>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        // Queue depth and wait: from here until a hashing thread picks the job up.
        let waiting = sesame_metrics::HashingWait::begin();
        let span = tracing::Span::current();
        let admitted = self.admitted;
        let wrapped: Job = Box::new(move || {
            waiting.end();
            let _admitted = admitted;
            if done.is_closed() {
                return;
            }
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| span.in_scope(job)));
            // The caller may have gone away (request cancelled): nobody to tell then.
            let _ = done.send(result.map_err(|panic| {
                PoolTaskFailed(
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panicked".to_owned()),
                )
            }));
        });
        self.jobs
            .send(wrapped)
            .map_err(|_| PoolTaskFailed("no password hashing thread runs".to_owned()))?;
        outcome
            .await
            .map_err(|_| PoolTaskFailed("the password hashing thread stopped".to_owned()))?
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

    #[tokio::test]
    async fn jobs_run_on_the_dedicated_threads_and_survive_a_panic() {
        let pool = HashingPool::new(2, 2);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap()
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("sesame-hash-")));
        let failed = pool
            .run(|| -> u32 { panic!("boom") })
            .await
            .unwrap()
            .unwrap_err();
        assert!(failed.0.contains("boom"), "{failed}");
        for _ in 0..4 {
            assert_eq!(pool.run(|| 7).await.unwrap().unwrap(), 7);
        }
    }
}
