package pdsvc

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Version is the PD version this server reports to clients.
const Version = "8.5.4"

func invalidArgument(msg string) error {
	return status.Error(codes.InvalidArgument, msg)
}

// unknownStatus reports an internal failure as PD's errs.ErrUnknown does.
func unknownStatus(err error) error {
	return status.Error(codes.Unknown, err.Error())
}
