import Glibc

/// The threads that serve requests which may block: calls to MagicBell
/// (the admin route, `MAGICBELL_MINT=api` tokens), as swift-nio keeps
/// blocking work on `NIOThreadPool` and off its event loops. An event loop
/// hands over a connection whose request is whole (`Connection.State.suspended`:
/// out of its epoll set, untouched by it), a pool thread answers it into
/// the connection's output and hands it back (`EventLoop.resume`).
///
/// Bounded: `--workers` threads. The queue needs no bound of its own: a
/// connection has at most one request on the pool, and connections are
/// bounded by `--max-connections`; the app's own gates
/// (`MAGICBELL_ADMIN_MAX_CONCURRENT`, `MAGICBELL_MINT_MAX_CONCURRENT`)
/// refuse at once what would wait on MagicBell beyond them.
final class BlockingPool: @unchecked Sendable {
    // @unchecked: `jobs` and `stopping` are only touched under `mutex`; a
    // job's connection belongs to whichever thread holds the job.
    struct Job {
        let connection: Connection
        let loop: EventLoop
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let ready = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [Job] = []
    private var head = 0
    private var stopping = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(ready, nil)
        jobs.reserveCapacity(64)
    }

    deinit {
        pthread_cond_destroy(ready)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        ready.deallocate()
    }

    func submit(_ job: Job) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(ready)
    }

    /// Lets the threads exit once the queue is empty.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_mutex_unlock(mutex)
        pthread_cond_broadcast(ready)
    }

    /// The next job, waiting for one; nil once stopped and empty.
    private func next() -> Job? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == jobs.count {
            if stopping { return nil }
            pthread_cond_wait(ready, mutex)
        }
        let job = jobs[head]
        head += 1
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= jobs.count {
            // A queue that never empties is compacted, not grown for ever.
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }

    /// One pool thread's life: answers jobs until stopped.
    func run(slot: Int, answerer: Answerer, activity: WorkerActivity) {
        var answerer = answerer
        while let job = next() {
            activity.setBusy(slot, true)
            activity.countServed(slot)
            answerer.answer(job.connection)
            activity.setBusy(slot, false)
            job.loop.resume(job.connection)
        }
    }
}
