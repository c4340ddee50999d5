-- A blob's bytes are deleted outside any transaction: the row is marked first, the bytes go,
-- then the row. An upload that takes a reference on a marked blob writes its bytes again.
ALTER TABLE blobs ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
