// `import Sandbox` brings in the whole sandbox layer: its three targets are
// split only so each builds and is tested alone (Package.swift).
@_exported import SandboxImages
@_exported import SandboxIsolation
@_exported import SandboxSupport
