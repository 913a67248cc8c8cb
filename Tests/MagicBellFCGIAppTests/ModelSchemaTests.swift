import Foundation
import MagicBellAPI
import Testing
@testable import MagicBellFCGIApp

/// Each model's schema (what api-description writes out, and the fake and
/// openapi.yaml are checked against) says what its Decodable does: every
/// model of every operation the route table forwards, field by field.
@Suite struct ModelSchemaTests {
    /// The models of the forwarded operations, nested ones too.
    static let models: [any APIModel.Type] = {
        var found: [any APIModel.Type] = []
        func add(_ type: any APIModel.Type) {
            guard !found.contains(where: { $0.schema.name == type.schema.name }) else { return }
            found.append(type)
            for field in type.schema.fields {
                switch field.kind {
                case .model(let nested), .list(of: let nested): add(nested)
                default: break
                }
            }
        }
        for entry in RouteTable.app[.admin].entries {
            guard case .forward(let forward) = entry.handler else { continue }
            if let body = forward.operation.body { add(body) }
            add(forward.operation.answer)
        }
        return found
    }()

    /// A value every field of `schema` accepts, all fields present.
    static func sample(_ schema: ModelSchema) -> [String: Any] {
        var object: [String: Any] = [:]
        for field in schema.fields {
            switch field.kind {
            case .string(let minLength, _): object[field.name] = String(repeating: "a", count: max(minLength, 1))
            case .integer(let minimum): object[field.name] = minimum ?? 1
            case .model(let nested): object[field.name] = sample(nested.schema)
            case .list(of: let nested): object[field.name] = [sample(nested.schema)]
            }
        }
        return object
    }

    static func decodes(_ type: any APIModel.Type, _ object: [String: Any]) -> Bool {
        func decode<Model: APIModel>(_ model: Model.Type, _ data: Data) -> Bool {
            (try? JSONDecoder().decode(Model.self, from: data)) != nil
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object) else { return false }
        return decode(type, data)
    }

    @Test func theOperationsHaveSevenModels() {
        #expect(Set(Self.models.map { $0.schema.name }) == ["AccessToken", "CreateProjectTokenRequest", "CreateUserTokenRequest",
                                                         "DiscardTokenResponse", "Links", "TokenList", "TokenListItem"])
    }

    @Test(arguments: ModelSchemaTests.models.map { $0.schema.name })
    func theSchemaSaysWhatDecodingDoes(_ name: String) throws {
        let type = try #require(Self.models.first { $0.schema.name == name })
        let schema = type.schema
        let full = Self.sample(schema)
        #expect(Self.decodes(type, full), "all fields present and valid")
        for field in schema.fields {
            var without = full
            without.removeValue(forKey: field.name)
            #expect(Self.decodes(type, without) == !field.required, "\(field.name) absent")
            var null = full
            null[field.name] = NSNull()
            #expect(Self.decodes(type, null) == field.nullable, "\(field.name) null")
            guard schema.closed else { continue } // answers: lengths are MagicBell's business
            if case .string(let minLength, let maxLength) = field.kind {
                if let maxLength {
                    var long = full
                    long[field.name] = String(repeating: "é", count: maxLength + 1)
                    #expect(!Self.decodes(type, long), "\(field.name) too long")
                    long[field.name] = String(repeating: "é", count: maxLength)
                    #expect(Self.decodes(type, long), "\(field.name) at its maximum")
                }
                if minLength > 0 {
                    var short = full
                    short[field.name] = String(repeating: "a", count: minLength - 1)
                    #expect(!Self.decodes(type, short), "\(field.name) too short")
                }
                var control = full
                control[field.name] = "a\u{1}"
                #expect(!Self.decodes(type, control), "\(field.name) with a control character")
            }
            if case .integer(let minimum?) = field.kind {
                var low = full
                low[field.name] = minimum - 1
                #expect(!Self.decodes(type, low), "\(field.name) below its minimum")
            }
        }
        var extra = full
        extra["not_a_field"] = 1
        #expect(Self.decodes(type, extra) == !schema.closed, "an unknown field")
        if !schema.requiresOneOf.isEmpty {
            var none = full
            for name in schema.requiresOneOf { none.removeValue(forKey: name) }
            #expect(!Self.decodes(type, none), "none of \(schema.requiresOneOf)")
        }
    }
}
