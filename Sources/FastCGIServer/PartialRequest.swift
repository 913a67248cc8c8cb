/// A request whose records are still arriving when its connection has
/// nothing more to read for now (issue 19 §2). Apache's mod_proxy_fcgi,
/// HAProxy's fcgi-app and a streaming lighttpd pass a request body on as the
/// client sends it, so a client that trickles its upload would hold the
/// worker reading it, and `--workers` such uploads would hold them all.
/// Instead the worker parks the connection with this state (in
/// `IdleConnections`) and takes the next event; whichever worker the
/// connection's next bytes wake picks the request up where it was.
///
/// Bounded: a request must be whole within `--io-timeout` of its first
/// byte (`deadline`, enforced by the reaper while it is parked), its header
/// block and body within the intake's limits, and all parked requests
/// together within `IdleConnections.maxHeldBytes`.
final class PartialRequest {
    var intake: RequestIntake
    /// The checked BEGIN_REQUEST and PARAMS records, rebuilt without
    /// padding (what libfcgi reads), and the STDIN contents so far.
    var headerBlock: [UInt8] = []
    var body: [UInt8] = []
    /// The record being read, header first: `have` bytes so far. While the
    /// worker reads, they are in the worker's record buffer; while parked, here.
    var have = 0
    private var parkedRecord: [UInt8] = []
    /// When the request must be whole (monotonic seconds).
    var deadline: Double = 0
    /// Whether the responder was asked if it answers before the body.
    var asked = false
    /// What `IdleConnections` counted against its budget when it was parked,
    /// and whether a stop waits for it.
    var parkedBytes = 0
    var awaited = false

    init(limits: RequestIntake.Limits) {
        intake = RequestIntake(limits: limits)
    }

    /// A new request, read from its first byte.
    func start(deadline: Double) {
        intake = RequestIntake(limits: intake.limits)
        headerBlock.removeAll(keepingCapacity: true)
        body.removeAll(keepingCapacity: true)
        have = 0
        parkedRecord.removeAll(keepingCapacity: true)
        self.deadline = deadline
        asked = false
    }

    /// The memory a parked request holds.
    var heldBytes: Int { headerBlock.capacity + body.capacity + parkedRecord.capacity }

    /// Keeps the part of the current record read so far, before parking.
    func saveRecord(from buffer: UnsafeMutableRawBufferPointer) {
        parkedRecord.removeAll(keepingCapacity: true)
        parkedRecord.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[..<have]))
    }

    /// Puts the part of the current record read so far back into the worker's buffer.
    func restoreRecord(into buffer: UnsafeMutableRawBufferPointer) {
        guard !parkedRecord.isEmpty else { return }
        UnsafeMutableRawBufferPointer(rebasing: buffer[..<parkedRecord.count]).copyBytes(from: parkedRecord)
        parkedRecord.removeAll()
    }
}
