import Foundation
import Testing
@testable import MagicBellAPI

@Suite struct ModelTests {
    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    @Test func createAnswerOlderRevisionSpecExample() throws {
        let created = try decode(CreatedToken.self,
            #"{"created_at":"2021-01-01T00:00:00Z","token":"eY.......","token_id":"019b1b1e-7b1b-4b1b-8b1b-1b1b1b1b1b1b"}"#)
        #expect(created.tokenID == "019b1b1e-7b1b-4b1b-8b1b-1b1b1b1b1b1b")
        #expect(created.expiresAt == nil)
    }

    @Test func createAnswerNewerRevisionWithNullExpiry() throws {
        let created = try decode(CreatedToken.self, #"{"token":"t","token_id":"id","created_at":"c","expires_at":null}"#)
        #expect(created.expiresAt == nil)
        let dated = try decode(CreatedToken.self, #"{"token":"t","token_id":"id","created_at":"c","expires_at":"2030-01-01T00:00:00Z"}"#)
        #expect(dated.expiresAt == "2030-01-01T00:00:00Z")
    }

    @Test func listAnswerOlderRevisionSpecExample() throws {
        let list = try decode(TokenList.self, """
        {"data":[{"created_at":"2021-01-01T00:00:00Z","discarded_at":"2021-01-01T00:00:00Z","expires_at":"2021-01-01T00:00:00Z",
        "id":"00000000-0000-0000-0000-000000000000","name":"My Token"}],
        "links":{"first":"https://api.magicbell.com/v1/example","next":"https://api.magicbell.com/v1/example?page[next]=abc","prev":null}}
        """)
        #expect(list.data.count == 1)
        #expect(list.data[0].id == "00000000-0000-0000-0000-000000000000")
        #expect(list.data[0].name == "My Token")
        #expect(list.links?.prev == nil)
        #expect(list.links?.next?.contains("page[next]") == true)
    }

    @Test func listAnswerNewerRevisionWithNullsAndMissingFields() throws {
        let list = try decode(TokenList.self,
            #"{"data":[{"created_at":"c","discarded_at":null,"name":null},{"id":"x","created_at":"d","expires_at":"e"}],"links":{"first":"f","next":null,"prev":null}}"#)
        #expect(list.data.map(\.createdAt) == ["c", "d"])
        #expect(list.data[0].discardedAt == nil && list.data[0].id == nil)
        #expect(list.data[1].expiresAt == "e")
    }

    @Test func listItemsNeedCreatedAt() {
        #expect(throws: (any Error).self) { try decode(TokenList.self, #"{"data":[{"id":"x"}]}"#) }
    }

    @Test func discardAnswer() throws {
        let discarded = try decode(DiscardedToken.self,
            #"{"discarded_at":"2021-01-01T00:00:00Z","token_id":"550e8400-e29b-41d4-a716-446655440000"}"#)
        #expect(discarded.tokenID == "550e8400-e29b-41d4-a716-446655440000")
        #expect(throws: (any Error).self) { try decode(DiscardedToken.self, #"{"token_id":"x"}"#) }
    }

    @Test func requestBodiesUseSnakeCase() throws {
        let body = try JSONEncoder().encode(CreateUserTokenRequest(externalID: "u1", expiry: 60))
        let json = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        #expect(json?["external_id"] as? String == "u1")
        #expect(json?["expiry"] as? Int == 60)
    }

    @Test func requestModelsValidateThemselvesWhenDecoded() throws {
        #expect(try decode(CreateProjectTokenRequest.self, #"{"name":"ci","expiry":1e3}"#) == CreateProjectTokenRequest(name: "ci", expiry: 1000))
        #expect(try decode(CreateUserTokenRequest.self, #"{"external_id":"u","name":null}"#) == CreateUserTokenRequest(externalID: "u"))
        func refusal<T: Decodable>(_ type: T.Type, _ json: String) -> String? {
            do { _ = try decode(type, json); return nil } catch { return (error as? InvalidRequestBody)?.message ?? "\(error)" }
        }
        #expect(refusal(CreateProjectTokenRequest.self, #"{"expiry":5}"#) == "name is required.")
        #expect(refusal(CreateProjectTokenRequest.self, #"{"name":""}"#) == "name must be 1 to 255 characters.")
        #expect(refusal(CreateProjectTokenRequest.self, #"{"name":"\#(String(repeating: "x", count: 256))"}"#) == "name must be 1 to 255 characters.")
        #expect(refusal(CreateProjectTokenRequest.self, #"{"name":"a\nb"}"#) == "name must not contain control characters.")
        #expect(refusal(CreateProjectTokenRequest.self, #"{"name":"x","extra":1}"#) == #"Unknown field "extra"; allowed: expiry, name."#)
        for expiry in ["0", "1.5", "true", #""60""#, "1e300", "-1"] {
            #expect(refusal(CreateProjectTokenRequest.self, #"{"name":"x","expiry":\#(expiry)}"#)?.hasPrefix("expiry") == true, "\(expiry)")
        }
        #expect(refusal(CreateUserTokenRequest.self, #"{"email":"","name":"n"}"#) == "email or external_id is required (a non-empty string).")
        #expect(refusal(CreateUserTokenRequest.self, #"{"email":"a@b.c","token":"x"}"#)?.hasPrefix("Unknown field \"token\"") == true)
    }

    @Test func paginationInBothStyles() {
        #expect(Pagination(limit: 5, startingAfter: "a").queryItems.map { "\($0.name)=\($0.value)" } == ["limit=5", "starting_after=a"])
        #expect(Pagination(pageSize: 5, pageBefore: "b").queryItems.map { "\($0.name)=\($0.value)" } == ["page[size]=5", "page[before]=b"])
    }
}

@Suite struct OperationTests {
    @Test func pathTemplatesAreSplitOnceThenMatchedAndRendered() {
        let template = PathTemplate("jwt/user/{user_id}")
        #expect(template.parameter == "user_id")
        #expect(template.description == "jwt/user/{user_id}")
        let fit = template.match(["jwt", "user", "u1"])
        #expect(fit.matches && fit.value == "u1")
        #expect(!template.match(["jwt", "user"]).matches)
        #expect(!template.match(["jwt", "team", "u1"]).matches)
        #expect(!template.match(["jwt", "user", "a", "b"]).matches)
        #expect(PathTemplate("jwt/project").match(["jwt", "project"]).matches)
        #expect(PathTemplate("jwt/project").parameter == nil)
        #expect(template.render("a b/c") == "jwt/user/a%20b%2Fc")
    }

    @Test func eachOperationNamesItsMethodPathAndModels() {
        #expect(JwtService.createUserJwt.operation.body?.schema.name == "CreateUserTokenRequest")
        #expect(JwtService.createUserJwt.operation.answer.schema.name == "AccessToken")
        #expect(JwtService.fetchUserTokens.operation.body == nil)
        #expect(JwtService.discardUserJwt.operation.answer.schema.name == "DiscardTokenResponse")
        #expect(JwtService.discardUserJwt.operation.method == "DELETE")
        // Only the lists take a query; the rest send none whatever they are given.
        #expect(JwtService.fetchProjectTokens.call(page: Pagination(limit: 5)).request.query.count == 1)
        #expect(JwtService.discardProjectJwt.call(pathValue: "x", page: Pagination(limit: 5)).request.query.isEmpty)
        #expect(JwtService.fetchUserTokens.call(pathValue: "u").request.body == nil)
        #expect(JwtService.createProjectJwt.call(body: CreateProjectTokenRequest(name: "n/a", expiry: nil)).request.body
            == Array(#"{"name":"n/a"}"#.utf8))
    }

    @Test func urlsEncodeThePathValueAsOneSegment() {
        let client = JWTServiceClient(projectToken: "t", baseURL: URL(string: "https://api.magicbell.com/v2/")!)
        let url = client.url(for: APIRequest(operation: JwtService.fetchUserTokens.operation, pathValue: "a b/c?d#é",
                                             query: [("page[size]", "5"), ("starting_after", "x&y=z")]))
        #expect(url?.absoluteString ==
            "https://api.magicbell.com/v2/jwt/user/a%20b%2Fc%3Fd%23%C3%A9?page%5Bsize%5D=5&starting_after=x%26y%3Dz")
    }

    @Test func percentDecodingIsSingleAndStrict() {
        #expect(PercentEncoding.decode(Array("a%2Fb%252F+".utf8)) == Array("a/b%2F+".utf8))
        #expect(PercentEncoding.decode(Array("bad%zz".utf8)) == nil)
        #expect(PercentEncoding.decode(Array("cut%2".utf8)) == nil)
    }
}
