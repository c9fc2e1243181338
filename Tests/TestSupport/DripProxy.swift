import Foundation

/// A TCP proxy on loopback in front of a Git server that forwards what the
/// server sends one byte at a time, one byte per `secondsPerByte`: never idle
/// long enough for an idle timeout, never done. What the client sends goes
/// through at once. A Python script, killed when the proxy is stopped (and
/// by its own alarm if a test run dies first).
public final class DripProxy: @unchecked Sendable {
    public enum Mode: String, Sendable {
        /// Every connection is dripped.
        case everyConnection = "all"
        /// Only git:// or HTTP connections asking for `git-upload-pack` (listings
        /// and fetches; pushes use receive-pack), and only while `flagPath` exists.
        case uploadPackWhileFlagged = "upload-pack"
        /// git:// only: the server's ref advertisement goes through at once, and what it sends
        /// after the client spoke again (its wants: the pack) is dripped — on the first
        /// connection that gets that far; later connections go through whole.
        case afterTheAdvertisementOnce = "after-advertisement"
    }

    public let port: Int
    /// Create this file to start dripping (`.uploadPackWhileFlagged`).
    public let flagPath: String
    /// Exists once the proxy has dripped at least one byte to a client.
    public let drippingPath: String
    private let process: Process

    public init(port: Int, upstreamPort: Int, mode: Mode, directory: String, secondsPerByte: Double = 1,
                lifetimeSeconds: Int = 180) throws {
        self.port = port
        flagPath = directory + "/drip-\(port).flag"
        drippingPath = directory + "/drip-\(port).dripping"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.script, String(port), String(upstreamPort), mode.rawValue, flagPath,
                             drippingPath, String(secondsPerByte), String(lifetimeSeconds)]
        let ready = Pipe()
        process.standardOutput = ready
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let greeting = ready.fileHandleForReading.readData(ofLength: 6)
        guard String(decoding: greeting, as: UTF8.self) == "ready\n" else {
            stop()
            throw DripProxyError(description: "the drip proxy could not listen on 127.0.0.1:\(port)")
        }
    }

    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    private static let script = #"""
    import os, signal, socket, sys, threading, time
    # The test process may hand down SIGTERM and SIGALRM ignored, or blocked.
    signal.signal(signal.SIGTERM, signal.SIG_DFL); signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGALRM])
    port, upstream, mode, flag, marker = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    interval, lifetime = float(sys.argv[6]), int(sys.argv[7])
    signal.alarm(lifetime)  # never outlives a killed test run for long
    listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port)); listener.listen(32)
    print("ready", flush=True)

    once_lock, once = threading.Lock(), {"taken": False}

    def pump(source, target, drip, heard=None):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    target.shutdown(socket.SHUT_WR)
                    return
                if heard is not None:
                    heard.set()
                if not drip():
                    target.sendall(data)
                    continue
                for i in range(len(data)):
                    target.sendall(data[i:i + 1])
                    open(marker, "a").close()
                    time.sleep(interval)
        except OSError:
            for s in (source, target):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass

    def after_the_advertisement(spoke):
        # Decided once per connection, when the server first sends after the client spoke again.
        mine = {"drip": None}
        def decide():
            if mine["drip"] is None:
                if not spoke.is_set(): return False
                with once_lock:
                    mine["drip"], once["taken"] = not once["taken"], True
            return mine["drip"]
        return decide

    def serve(client):
        try:
            server = socket.create_connection(("127.0.0.1", upstream))
        except OSError:
            client.close(); return
        heard = None
        if mode == "all":
            drip = lambda: True
        elif mode == "after-advertisement":
            server.sendall(client.recv(65536))
            heard = threading.Event()
            drip = after_the_advertisement(heard)
        else:
            # git:// names the service in its first packet, HTTP in its request line.
            first = client.recv(65536)
            flagged = b"git-upload-pack" in first and os.path.exists(flag)
            drip = lambda: flagged
            server.sendall(first)
        threading.Thread(target=pump, args=(client, server, lambda: False, heard), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, drip), daemon=True).start()

    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()
    """#
}

public struct DripProxyError: Error, CustomStringConvertible {
    public let description: String
}
