import Glibc

/// dgrid's own notes follow a task's output on stderr and must start on a
/// line of their own, even when the task's last line had no newline — on
/// stderr, or on stdout when both go to the same file (`2>&1`, one terminal).
package enum NoteLineStart {
    /// The newline to write before the first note: empty when the last byte
    /// the notes' file received already ended a line.
    package static func separator(afterStdout stdout: [UInt8], stderr: [UInt8],
                                  sameFile: Bool = stdoutAndStderrShareAFile()) -> [UInt8] {
        let last = stderr.last ?? (sameFile ? stdout.last : nil)
        guard let last, last != UInt8(ascii: "\n") else { return [] }
        return [UInt8(ascii: "\n")]
    }

    /// Whether descriptors 1 and 2 are one open file (or one terminal).
    package static func stdoutAndStderrShareAFile() -> Bool {
        var out = stat(), err = stat()
        guard fstat(STDOUT_FILENO, &out) == 0, fstat(STDERR_FILENO, &err) == 0 else { return false }
        return out.st_dev == err.st_dev && out.st_ino == err.st_ino
    }
}
