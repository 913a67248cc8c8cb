import Foundation
import Testing
import TestSupport

/// The CLibCrypto shim has two HMAC paths: libcrypto's SHA-256 primitive
/// (what this build uses) and EVP_MAC (for an OpenSSL built without the
/// deprecated API). The Swift tests exercise the first; this compiles the
/// shim with clang both ways and checks each against RFC 4231 case 2 and
/// case 6 (a key longer than a block).
@Suite struct HMACShimTests {
    static let program = """
    #include "shim.h"
    #include <stdio.h>
    static void mac(const char *key, size_t key_len, const char *message) {
        unsigned char out[32];
        mbf_hmac *h = mbf_hmac_sha256_new((const unsigned char *)key, key_len);
        if (!h || !mbf_hmac_sha256(h, (const unsigned char *)message, strlen(message), out)) { puts("failed"); return; }
        mbf_hmac_sha256_free(h);
        for (int i = 0; i < 32; i++) printf("%02x", out[i]);
        putchar('\\n');
    }
    int main(void) {
        char big[131];
        memset(big, 0xaa, sizeof big);
        mac("Jefe", 4, "what do ya want for nothing?");
        mac(big, sizeof big, "Test Using Larger Than Block-Size Key - Hash Key First");
        return 0;
    }
    """

    @Test(arguments: ["primitive", "evp"])
    func bothPathsMatchRFC4231(_ path: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hmac-shim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("hmac.c")
        try Self.program.write(to: source, atomically: true, encoding: .utf8)
        let shim = FakeMagicBell.root.appendingPathComponent("Sources/CLibCrypto").path
        let binary = directory.appendingPathComponent("hmac").path
        var flags = ["-O1", "-Wall", "-Werror", "-I", shim, "-o", binary, source.path, "-lcrypto"]
        if path == "evp" { flags.insert("-DOPENSSL_NO_DEPRECATED", at: 0) }
        let built = try runProcess("/usr/bin/env", ["clang"] + flags)
        try #require(built.status == 0, "clang: \(built.stderr)")
        let run = try runProcess(binary, [])
        #expect(run.stdout.split(separator: "\n") == [
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ])
        if path == "evp" {
            // The macro must really have removed the primitive: the same program calling it no longer builds.
            let probe = directory.appendingPathComponent("probe.c")
            try "#include \"shim.h\"\nint main(void) { SHA256_CTX c; return SHA256_Init(&c); }\n".write(to: probe, atomically: true, encoding: .utf8)
            let refused = try runProcess("/usr/bin/env", ["clang", "-DOPENSSL_NO_DEPRECATED", "-Werror", "-I", shim, "-o", binary + "-probe", probe.path, "-lcrypto"])
            #expect(refused.status != 0)
        }
    }
}
