import CCurl

/// One exchange's state, which libcurl's callbacks reach through their
/// context pointer: the answer as it arrives, and whether the request has
/// been sent. Used by the calling thread only (libcurl calls back on it).
final class Transfer {
    let bodyLimit: Int
    let cancellation: Cancellation?
    private(set) var received: [UInt8] = []
    private(set) var fields: [HTTPField] = []
    private(set) var tooLarge = false
    /// All of an answer's header lines, a proxy's CONNECT answer's
    /// included, are at most this long (libcurl caps them only from 8.3).
    static let headerLimit = 64 * 1024
    private var headerBytes = 0
    private(set) var headerTooLarge = false
    /// Set just before libcurl sends the request: from then on MagicBell
    /// may act on it, and a cancellation no longer stops the call.
    fileprivate(set) var sent = false
    /// The request body, in memory libcurl reads during the transfer.
    let requestBody: UnsafeMutableRawPointer?
    let requestBodyCount: Int
    /// POSTFIELDS for a POST without a body: a valid pointer to no bytes.
    let emptyBody = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    /// CURLOPT_ERRORBUFFER: libcurl's message for a failure.
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    init(bodyLimit: Int, cancellation: Cancellation?, body: [UInt8]?) {
        self.bodyLimit = bodyLimit
        self.cancellation = cancellation
        if let body {
            let copy = UnsafeMutableRawPointer.allocate(byteCount: max(body.count, 1), alignment: 1)
            body.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(copy), byteCount: body.count) }
            requestBody = copy
            requestBodyCount = body.count
        } else {
            requestBody = nil
            requestBodyCount = 0
        }
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        requestBody?.deallocate()
        emptyBody.deallocate()
        errorBuffer.deallocate()
    }

    var errorMessage: String? {
        let message = String(cString: errorBuffer)
        return message.isEmpty ? nil : message
    }

    fileprivate func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard received.count + bytes.count <= bodyLimit else {
            tooLarge = true
            return false
        }
        received.append(contentsOf: bytes)
        return true
    }

    /// One header line as libcurl hands it over (CRLF included). A status
    /// line starts the fields again: only the final answer's are kept (not
    /// a 100 Continue's, nor a proxy's CONNECT answer's).
    fileprivate func appendHeader(_ line: UnsafeRawBufferPointer) -> Bool {
        headerBytes += line.count
        guard headerBytes <= Self.headerLimit else {
            headerTooLarge = true
            return false
        }
        var bytes = line[...]
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes = bytes.dropLast() }
        if bytes.starts(with: Array("HTTP/".utf8)) {
            // A new answer (after a 1xx, a CONNECT, or libcurl sending the
            // request again): nothing of an earlier one is kept.
            fields = []
            received = []
            return true
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return true }
        let name = String(decoding: bytes[..<colon], as: UTF8.self)
        var value = bytes[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        fields.append(HTTPField(name: name, value: String(decoding: value, as: UTF8.self)))
        return true
    }
}

/// CURLOPT_WRITEFUNCTION: the body, up to the limit. Returning fewer bytes
/// than given ends the transfer with CURLE_WRITE_ERROR.
let receiveBody: curl_write_callback = { data, size, count, context in
    guard let context, let data else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    return transfer.appendBody(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
}

/// CURLOPT_HEADERFUNCTION: each header line of the answer.
let receiveHeader: curl_write_callback = { data, size, count, context in
    guard let context, let data else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    return transfer.appendHeader(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : 0
}

/// CURLOPT_PREREQFUNCTION: the connection is up and the request about to be
/// sent. A cancellation until here ends the call; from here it is ignored.
let aboutToSend: curl_prereq_callback = { context, _, _, _, _ in
    guard let context else { return CURL_PREREQFUNC_OK }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    // Once sent, always sent: libcurl may send it again (a dead kept
    // connection, a REFUSED_STREAM), and a cancellation must not then
    // hide an answer MagicBell may have acted on.
    if !transfer.sent && transfer.cancellation?.isCancelled == true { return CURL_PREREQFUNC_ABORT }
    transfer.sent = true
    return CURL_PREREQFUNC_OK
}
