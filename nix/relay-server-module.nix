# NixOS module: services.connet-relay runs `connet relay --config <settings>`:
# a relay that joins a control server.
import ./service.nix {
  role = "relay";
  section = "relay";
  subcommand = [ "relay" ];
  directory = "StateDirectory";
  fileKeys = [
    "token-file"
    "control-cas-file"
  ];
  ingressKeys = [ ];
  description = "relay of a peer-to-peer reverse proxy";
}
