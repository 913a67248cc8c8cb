/// An operation's path relative to the API base URL, such as
/// `jwt/user/{user_id}`: literal segments and at most one parameter, split
/// once, when the operation is described. Matching a request's segments
/// and building the path MagicBell is called with both work from the split
/// form, so a template is never searched or rewritten per call.
public struct PathTemplate: Sendable, Equatable, CustomStringConvertible {
    public enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    public let segments: [Segment]
    /// The parameter's name (`user_id`), if the path has one.
    public let parameter: String?

    /// `template`: segments separated by `/`, the parameter as `{name}`.
    public init(_ template: String) {
        segments = template.split(separator: "/").map { piece in
            piece.hasPrefix("{") && piece.hasSuffix("}") ? .parameter(String(piece.dropFirst().dropLast())) : .literal(String(piece))
        }
        parameter = segments.lazy.compactMap { if case .parameter(let name) = $0 { name } else { nil } }.first
        precondition(segments.count { if case .parameter = $0 { true } else { false } } <= 1, "one path parameter at most: \(template)")
    }

    /// As written: `jwt/user/{user_id}`.
    public var description: String {
        segments.map { segment in
            switch segment {
            case .literal(let text): text
            case .parameter(let name): "{\(name)}"
            }
        }.joined(separator: "/")
    }

    /// Whether the decoded `path` segments fit, and the parameter's value
    /// (nil when the template has none). Nothing in the value is checked here.
    public func match(_ path: [String]) -> (matches: Bool, value: String?) {
        guard path.count == segments.count else { return (false, nil) }
        var value: String?
        for (segment, piece) in zip(segments, path) {
            switch segment {
            case .literal(let text): if text != piece { return (false, nil) }
            case .parameter: value = piece
            }
        }
        return (true, value)
    }

    /// The path with `value` percent-encoded as exactly one segment.
    public func render(_ value: String?) -> String {
        segments.map { segment in
            switch segment {
            case .literal(let text): text
            case .parameter: PercentEncoding.encode((value ?? "").utf8)
            }
        }.joined(separator: "/")
    }
}
