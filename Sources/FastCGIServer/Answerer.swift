/// One thread's responder with the buffers it answers into: each event
/// loop and each pool thread has its own, so answering takes no lock and,
/// once the buffers have grown, allocates nothing.
struct Answerer: @unchecked Sendable {
    // @unchecked: made on the thread that starts the server and handed to
    // the one thread that uses it from then on; never shared.
    let responder: any FastCGIResponder
    private var response = HTTPResponse()
    private var wire: [UInt8] = []

    init(_ responder: any FastCGIResponder) {
        self.responder = responder
        wire.reserveCapacity(2048)
    }

    /// Answers the connection's whole request (or, `withheld`, its request
    /// whose body is still arriving) into its output, as FastCGI records.
    mutating func answer(_ connection: Connection, withheld: Bool = false) {
        connection.received.bodyWithheld = withheld
        response.reset()
        responder.respond(to: FastCGIRequest(connection.received), with: &response)
        response.serialize(into: &wire)
        wire.withUnsafeBytes {
            ResponseRecords.append($0, requestID: connection.intake.requestID, to: &connection.output)
        }
    }
}
