import Sandbox

/// `image_store` and `default_image`: every blob in the store still hashes to
/// its name (the image store's own `verify`, here without moving anything),
/// and the worker's default image resolves — allowlisted, pinned, in the store,
/// every layer unpacked (`DefaultImageCheck`, what the worker asks before it
/// claims). Rehashing reads every blob: this check costs a read of the store.
public enum ImageStoreCheck {
    public static func check(state: StateDirectory, defaultImage: String) -> [HostCheck] {
        let store: ImageStore
        do {
            store = try ImageStore(state: state)
        } catch {
            return [.fail(.imageStore, "the image store under \(state.path) cannot be opened: \(error)",
                          fix: "fix state_directory first; dgrid image list shows the same error"),
                    .fail(.defaultImage, "not checked: no image store", fix: "fix image_store first")]
        }
        let verified: HostCheck
        do {
            let report = try store.content.verifyAll(quarantining: false)
            if report.corrupt.isEmpty {
                verified = .pass(.imageStore, "\(report.checked) blobs (\(DiskSpaceCheck.size(UInt64(max(0, report.bytes))))) hash to their names")
            } else {
                let names = report.corrupt.prefix(3).map { "\(String($0.name.prefix(12))) (\($0.problem))" }.joined(separator: ", ")
                verified = .fail(.imageStore, "\(report.corrupt.count) of \(report.checked) blobs are corrupt: \(names)\(report.corrupt.count > 3 ? ", …" : "")",
                                 fix: "dgrid image verify (moves them to images/quarantine/), then import or pull the images that used them again")
            }
        } catch {
            verified = .fail(.imageStore, "cannot verify the image store: \(error)", fix: "fix state_directory first")
        }
        let image: HostCheck
        if let problem = DefaultImageCheck(store: store, reference: defaultImage).problem() {
            image = .fail(.defaultImage, "the default \(problem.reason); a worker claims nothing until it resolves", fix: problem.fix)
        } else {
            image = .pass(.defaultImage, "\(defaultImage) is allowed, in the store and unpacked")
        }
        return [verified, image]
    }
}
