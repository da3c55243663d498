package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeepCopy(t *testing.T) {
	lvb := &LocalVolumeBindingArgs{BindTimeoutSeconds: 30, BindMode: BindModePVController}
	lvbCopy, ok := lvb.DeepCopyObject().(*LocalVolumeBindingArgs)
	require.True(t, ok)
	assert.Equal(t, lvb, lvbCopy)
	assert.NotSame(t, lvb, lvbCopy)
	lvbCopy.BindTimeoutSeconds = 31
	lvbCopy.BindMode = BindModeDirect
	assert.Equal(t, &LocalVolumeBindingArgs{BindTimeoutSeconds: 30, BindMode: BindModePVController}, lvb, "changing the copy must not change the original")

	ss := &StorageScoreArgs{Shape: DefaultStorageScoreShape()}
	ssCopy, ok := ss.DeepCopyObject().(*StorageScoreArgs)
	require.True(t, ok)
	assert.Equal(t, ss, ssCopy)
	ssCopy.Shape[0].Score = 7
	assert.Equal(t, int32(0), ss.Shape[0].Score, "the copy must not share the shape slice")

	assert.Nil(t, (*LocalVolumeBindingArgs)(nil).DeepCopy())
	assert.Nil(t, (*StorageScoreArgs)(nil).DeepCopy())
}

func TestDefaultStorageScoreShapeIsFresh(t *testing.T) {
	a := DefaultStorageScoreShape()
	a[1].Score = 0
	assert.Equal(t, []UtilizationShapePoint{{Utilization: 0, Score: 0}, {Utilization: 100, Score: 10}}, DefaultStorageScoreShape())
}
