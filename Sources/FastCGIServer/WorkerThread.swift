import CFastCGI
import Glibc

/// A named POSIX thread (Foundation's Thread would bring all of Foundation
/// into the binary, and so into every CGI process's start). Joinable, so
/// that a stop can wait until a thread has run its thread-local destructors
/// (OpenSSL's per-thread state among them) before the process exits.
enum WorkerThread {
    @discardableResult
    static func start(named name: String, _ body: @escaping @Sendable () -> Void) throws(ListenError) -> pthread_t {
        final class Start {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let context = Unmanaged.passRetained(Start(name, body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        var thread = pthread_t()
        let created = pthread_create(&thread, &attributes, { context in
            let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            // The kernel's limit is 15 bytes; top(1) and gdb show it.
            _ = mbf_set_thread_name(String(start.name.utf8.prefix(15))!)
            start.body()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            throw ListenError("pthread_create: \(String(cString: strerror(created)))")
        }
        return thread
    }
}
