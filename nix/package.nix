# The connet binary, built the way scripts/release.sh and the Dockerfile
# build it: no cgo, no build paths, the version stamped.
{
  lib,
  buildGoModule,
  version ? "dev",
}:
buildGoModule {
  pname = "connet";
  inherit version;
  src = lib.cleanSource ../.;
  # The hash of `go mod vendor` for go.mod/go.sum; scripts/packaging-check.sh
  # recomputes it and says the new value when go.sum changes.
  vendorHash = "sha256-LRwUUbMythkDdhuDdEaGelHLsyM9GCMJmouN0VD9i/E=";
  subPackages = [ "cmd/connet" ];
  env.CGO_ENABLED = "0";
  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}"
  ];
  # The tests need real sockets, network namespaces and root.
  doCheck = false;
  meta = {
    description = "Peer-to-peer reverse proxy: services behind NATs reached over direct QUIC";
    mainProgram = "connet";
  };
}
