# NixOS module: services.connet-server runs `connet server --config <settings>`:
# a control server and, by default, a relay next to it.
import ./service.nix {
  role = "server";
  section = "server";
  subcommand = [ "server" ];
  directory = "StateDirectory";
  fileKeys = [ "tokens-file" ];
  ingressKeys = [ "ingress" ];
  description = "control server and relay of a peer-to-peer reverse proxy";
}
