// Package pb holds the generated protobuf types of connet's wire protocol.
package pb

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --go_out=. --go_opt=paths=source_relative connet.proto"
