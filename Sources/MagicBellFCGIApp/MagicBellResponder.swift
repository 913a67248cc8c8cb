#if canImport(Glibc)
import Glibc
#endif
import FastCGIServer
import Logging

/// The app: routes each request and maps failures to JSON errors. One
/// instance per worker thread, so its minter and buffers are never shared.
public final class MagicBellResponder: FastCGIResponder {
    private var token: TokenEndpoint
    private var admin: AdminEndpoint
    private var logger: Logger
    /// Where a reloaded configuration comes from, and the generation this
    /// worker's endpoints were built for.
    private let holder: ContextHolder?
    private var generation: Int

    /// A worker's responder, following the configuration in `holder`.
    public init(holder: ContextHolder) throws {
        let (context, generation) = holder.snapshot()
        token = try TokenEndpoint(context: context)
        admin = AdminEndpoint(context: context)
        logger = context.logger
        self.holder = holder
        self.generation = generation
    }

    /// A responder with a fixed context.
    public init(context: AppContext) throws {
        token = try TokenEndpoint(context: context)
        admin = AdminEndpoint(context: context)
        logger = context.logger
        holder = nil
        generation = 0
    }

    /// A responder with a context of its own (the CLI, tests).
    public convenience init(configuration: Configuration, logger: Logger,
                            clock: @escaping @Sendable () -> Int = MagicBellResponder.systemClock) throws {
        try self.init(context: AppContext(configuration: configuration, logger: logger, clock: clock))
    }

    /// Takes up a reloaded configuration, between two requests.
    private func followReload(_ holder: ContextHolder) {
        let (context, generation) = holder.snapshot()
        do {
            token = try TokenEndpoint(context: context)
            admin = AdminEndpoint(context: context)
            logger = context.logger
        } catch {
            // Only an OpenSSL failure gets here; keep serving with what works.
            logger.error("worker could not take up the reloaded configuration", metadata: ["error": "\(error)"])
        }
        self.generation = generation
    }

    /// Unix seconds; `time()` is a vDSO call, no syscall.
    public static let systemClock: @Sendable () -> Int = { Int(time(nil)) }

    public func respond(to request: FastCGIRequest, with response: inout HTTPResponse) {
        if let holder, holder.generation != generation { followReload(holder) }
        handle(request, &response)
    }

    /// The whole request → response mapping, for any source of params.
    public func handle(_ request: some RequestParameters & RequestBodyReader, _ response: inout HTTPResponse) {
        do throws(APIError) {
            switch Route.of(request) {
            case .token:
                try token.respond(to: request, with: &response)
            case .admin:
                admin.respond(to: request, rawPath: AdminRequest.rawAdminPath(request) ?? UnsafeBufferPointer(start: nil, count: 0)[...],
                              with: &response)
            case .notFound:
                throw .notFound
            }
        } catch {
            if error.status == 400 {
                logger.warning("refused identity", metadata: [
                    "code": "\(error.code)", "request_id": "\(request.string("REQUEST_ID") ?? "-")",
                ])
            }
            error.write(to: &response)
        }
    }
}
