import CFastCGI
import Glibc

/// A named, detached POSIX thread (Foundation's Thread would bring all of
/// Foundation into the binary, and so into every CGI process's start).
enum WorkerThread {
    static func start(named name: String, _ body: @escaping @Sendable () -> Void) throws(ListenError) {
        final class Start {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let context = Unmanaged.passRetained(Start(name, body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
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
    }
}
