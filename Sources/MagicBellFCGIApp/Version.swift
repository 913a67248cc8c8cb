public enum MagicBellFCGIVersion {
    public static let current = "0.1.0"
}
