package main

import (
	"context"
	"fmt"

	"github.com/tikv/client-go/v2/rawkv"
	"github.com/tikv/client-go/v2/txnkv"
	"github.com/tikv/client-go/v2/txnkv/transaction"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rawStore drives TinyKV through client-go's rawkv: read = Get, write = Put.
type rawStore struct{ cli *rawkv.Client }

func (s rawStore) read(ctx context.Context, key []byte) error {
	v, err := s.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("raw get: %w", err)
	}
	if v == nil {
		return errNotFound
	}
	return nil
}

func (s rawStore) write(ctx context.Context, key, value []byte) error {
	if err := s.cli.Put(ctx, key, value); err != nil {
		return fmt.Errorf("raw put: %w", err)
	}
	return nil
}

// txnStore drives TinyKV through client-go's txnkv, one transaction per
// request with 1PC and async commit enabled as go-ycsb's tikv driver does:
// read = begin, get, commit (free when read-only); write = begin, set,
// commit.
type txnStore struct{ cli *txnkv.Client }

func (s txnStore) begin() (*transaction.KVTxn, error) {
	txn, err := s.cli.Begin()
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	txn.SetEnable1PC(true)
	txn.SetEnableAsyncCommit(true)
	return txn, nil
}

func (s txnStore) read(ctx context.Context, key []byte) error {
	txn, err := s.begin()
	if err != nil {
		return err
	}
	if _, err := txn.Get(ctx, key); err != nil {
		_ = txn.Rollback()
		return fmt.Errorf("txn get: %w", err)
	}
	return commit(ctx, txn)
}

func (s txnStore) write(ctx context.Context, key, value []byte) error {
	txn, err := s.begin()
	if err != nil {
		return err
	}
	if err := txn.Set(key, value); err != nil {
		_ = txn.Rollback()
		return fmt.Errorf("txn set: %w", err)
	}
	return commit(ctx, txn)
}

func commit(ctx context.Context, txn *transaction.KVTxn) error {
	if err := txn.Commit(ctx); err != nil {
		return fmt.Errorf("txn commit: %w", err)
	}
	return nil
}

// etcdStore drives etcd through clientv3: read = Get (linearizable, the
// default), write = Put.
type etcdStore struct{ cli *clientv3.Client }

func (s etcdStore) read(ctx context.Context, key []byte) error {
	resp, err := s.cli.Get(ctx, string(key))
	if err != nil {
		return fmt.Errorf("etcd get: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return errNotFound
	}
	return nil
}

func (s etcdStore) write(ctx context.Context, key, value []byte) error {
	if _, err := s.cli.Put(ctx, string(key), string(value)); err != nil {
		return fmt.Errorf("etcd put: %w", err)
	}
	return nil
}
