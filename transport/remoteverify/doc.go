// Package remoteverify answers "is the registry serving my build?": it
// fetches the manifest a registry reference resolves to and compares it
// with the one an image description builds (transport.Built), digest
// first. Only when the digests differ is the registry's manifest read
// field by field, and its config blob fetched only when the config
// digests differ too: the differences name manifest fields, config fields
// by their JSON path (config.Env[1], created), and layers by index with
// the store paths the description's layer holds. No layer blob is ever
// downloaded.
//
// Registries are reached with transport/registry's Options (credentials,
// TLS, certificates), under the same rules as a push.
//
// An image is compared with the manifest (Compare); an index description
// with the index (CompareIndex): its fields, then its images platform by
// platform, each image whose digest differs compared as Compare does.
package remoteverify
