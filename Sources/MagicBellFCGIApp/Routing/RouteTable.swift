import MagicBellAPI

/// The responder's routes (the table itself is `RouteTable.app`, in
/// Routes.swift): for each route a location can declare, the steps its
/// requests pass, and its entries, each a method set, a path and a handler.
/// Matching works on the values `Route` checked: the declared route, the
/// method, and the admin route's decoded path segments.
struct RouteTable: Sendable {
    /// What answers a matched request.
    enum Handler: Sendable {
        /// A token for the identity the location set (`TokenEndpoint`).
        case token
        /// `{"status":"ok"}`, no identity, no secret.
        case health
        /// The Prometheus text.
        case metrics
        /// One of the console's files.
        case asset(ConsoleAssets.Asset)
        /// One of MagicBell's operations, forwarded with the project token.
        case forward(any AdminForward)
    }

    /// A step every request of a group passes, outermost first.
    enum Step: Sendable {
        /// Counted in `magicbell_fcgi_admin_requests_total` by entry name and
        /// status; errors are answered here (an admin refusal is not a
        /// token refusal, and has its own line: the audit's).
        case counted
        /// One audit line (`AuditLog`) per request, with the actor the
        /// location set; entries that `auditsRefusalsOnly` only when refused.
        case audited
        /// Same-site browsers only (`Steps.checkOrigin`).
        case sameOrigin
    }

    struct Entry: Sendable {
        let handler: Handler
        let methods: [HTTPMethod]
        /// The path after `/magicbell-admin/`; nil for routes that act on
        /// no path (token, health, metrics: the location chose them).
        let path: PathTemplate?
        /// As metrics and the audit line name it.
        let name: String
        /// A read (a scrape, a page load) counted but not audited, unless refused.
        let auditsRefusalsOnly: Bool

        init(_ handler: Handler, methods: [HTTPMethod], path: String? = nil, name: String, auditsRefusalsOnly: Bool = false) {
            self.handler = handler
            self.methods = methods
            self.path = path.map(PathTemplate.init)
            self.name = name
            self.auditsRefusalsOnly = auditsRefusalsOnly
        }

        /// One of MagicBell's operations: its method and path, its name, and
        /// the generic forward of its call.
        static func forward<Body, Answer>(_ endpoint: JwtEndpoint<Body, Answer>) -> Entry {
            let operation = endpoint.operation
            return Entry(.forward(endpoint), methods: [HTTPMethod(operation.method)], path: operation.path.description,
                         name: operation.name)
        }
    }

    struct Group: Sendable {
        let route: Route
        let steps: [Step]
        /// Its requests may wait on MagicBell: answered on the blocking pool.
        let blocks: Bool
        let entries: [Entry]

        init(_ route: Route, wrappedIn steps: [Step] = [], blocks: Bool = false, entries: [Entry]) {
            self.route = route
            self.steps = steps
            self.blocks = blocks
            self.entries = entries
        }
    }

    enum Match {
        case found(Entry, pathValue: String?)
        /// The path exists, not with this method: the methods it takes,
        /// sorted, and its name when all its entries share one (the
        /// console's, the metrics'), for the count and the audit line.
        case methodNotAllowed([String], name: String?)
        case notFound
    }

    /// Indexed by `Route.rawValue`.
    let groups: [Group]

    init(_ groups: [Group]) {
        self.groups = groups.sorted { $0.route.rawValue < $1.route.rawValue }
        precondition(self.groups.map(\.route) == Route.allCases, "one group per route")
        for group in self.groups {
            // A route with paths has a path on every entry (one without would
            // answer every path), and one entry per path and method.
            let paths = group.entries.map { $0.path?.description }
            precondition(paths.allSatisfy { $0 != nil } || group.entries.count == 1, "\(group.route.name): an entry without a path")
            var seen: Set<String> = []
            for entry in group.entries {
                for method in entry.methods {
                    precondition(seen.insert("\(method.name) \(entry.path?.description ?? "*")").inserted,
                                 "\(group.route.name): two entries for \(method.name) \(entry.path?.description ?? "*")")
                }
            }
        }
    }

    subscript(route: Route) -> Group { groups[route.rawValue] }

    /// The entry of `route` for `method` and `path` (the admin route's
    /// segments; ignored by entries without a path).
    func match(_ route: Route, _ method: HTTPMethod, path: [String]) -> Match {
        // "//" or a trailing "/": no entry has an empty segment.
        if path.contains(where: \.isEmpty) { return .notFound }
        var allowed: [String] = [], names: Set<String> = []
        for entry in groups[route.rawValue].entries {
            var pathValue: String?
            if let template = entry.path {
                let fit = template.match(path)
                guard fit.matches else { continue }
                pathValue = fit.value
            }
            if entry.methods.contains(method) { return .found(entry, pathValue: pathValue) }
            allowed += entry.methods.map(\.name)
            names.insert(entry.name)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed.sorted(), name: names.count == 1 ? names.first : nil)
    }
}
