import MagicBellAPI

/// Every request the responder answers, in one table: the route the
/// location declares (`MAGICBELL_ROUTE`), the method, the path after
/// `/magicbell-admin/` (admin route only) → what answers it. The steps
/// every request of a route passes first (count, audit, same-origin
/// check) wrap its handlers; they are not flags in them.
///
/// Adding one of MagicBell's operations: its entry in `JwtService` (its
/// models, method and path) and one `.forward` line here.
extension RouteTable {
    static let app = RouteTable([
        Group(.token, entries: [
            Entry(.token, methods: [.get, .post], name: "token"),
        ]),
        Group(.health, entries: [
            Entry(.health, methods: [.get, .head], name: "health"),
        ]),
        Group(.metrics, wrappedIn: [.counted, .sameOrigin], entries: [
            Entry(.metrics, methods: [.get], name: "metrics"),
        ]),
        Group(.admin, wrappedIn: [.counted, .audited, .sameOrigin], blocks: true, entries: [
            // Scrapes and page loads are counted, not audited: refusals are.
            Entry(.metrics, methods: [.get], path: "metrics", name: "metrics", auditsRefusalsOnly: true),
            Entry(.asset(.page), methods: [.get], path: "", name: "console", auditsRefusalsOnly: true),
            Entry(.asset(.script), methods: [.get], path: "console.js", name: "console", auditsRefusalsOnly: true),
            Entry(.asset(.style), methods: [.get], path: "console.css", name: "console", auditsRefusalsOnly: true),
            .forward(JwtService.fetchProjectTokens),
            .forward(JwtService.createProjectJwt),
            .forward(JwtService.discardProjectJwt),
            .forward(JwtService.createUserJwt),
            .forward(JwtService.discardUserJwt),
            .forward(JwtService.fetchUserTokens),
        ]),
    ])
}
