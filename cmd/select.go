package cmd

import (
	"errors"

	"github.com/spf13/cobra"
)

// NewCmdSelect builds the `select` command.
func NewCmdSelect(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "select",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("select: not implemented yet")
		},
	}
}
