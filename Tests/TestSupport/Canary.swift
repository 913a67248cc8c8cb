import Foundation

/// Every secret and project token the tests hand the responder carries this
/// marker, so that `scripts/test` can check the logs of the whole run for
/// leaks with one grep (see `Scratch`, which keeps the logs when asked).
public enum Canary {
    public static let marker = "mbfcanary"

    /// A fresh secret value, e.g. `integration-secret-mbfcanary-…`.
    public static func secret(_ label: String) -> String { "\(label)-\(marker)-\(UUID().uuidString)" }
}
