package cli

import "github.com/spf13/cobra"

// commands lists the subcommands; each lives in its own file.
func commands() []*cobra.Command {
	return []*cobra.Command{
		// builder side (layers/)
		newCmdLayer(),
		newCmdImage(),
		newCmdIndex(),
		newCmdWriteConfig(),
		newCmdNixDB(),
		newCmdUsers(),
		newCmdWriteApp(),
		newCmdFetchImage(),
		newCmdVerify(),
		newCmdVersion(),
		// push side (transport/)
		newCmdCopy(),
		newCmdPush(),
		newCmdWritePlan(),
		newCmdInspect(),
		newCmdGenerateSigstoreKey(),
		newCmdSBOM(),
		newCmdLock(),
	}
}
