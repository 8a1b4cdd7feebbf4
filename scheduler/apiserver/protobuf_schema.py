"""The Kubernetes API's protobuf message types, as the table the protobuf body decoder reads.

``protobuf.py`` turns a ``application/vnd.kubernetes.protobuf`` request body
into the JSON object it stands for. The wire carries only field numbers and
values, so the decoder needs, for every message type it may meet, each
field's number, its JSON name, its type, and whether Go's ``encoding/json``
would still write it when it is zero. This module is that knowledge, as data:

* ``KINDS`` / ``SUPPORTED_KINDS``: the top-level kinds whose bodies can be
  read (JSON and YAML bodies are accepted for every kind);
* ``TABLE``: one entry per message type.

Field numbers are those of the Kubernetes API's protobuf definitions, the
``generated.proto`` files of ``k8s.io/api`` (one per group and version, such
as ``core/v1`` or ``apps/v1``) and of ``k8s.io/apimachinery`` (``meta/v1``,
``runtime``, ``api/resource``, ``util/intstr``); JSON names, and which zero
values are kept, follow the ``json`` tags of the Go types those files are
generated from. A field added to the API later is missing here until it is
added, and the decoder refuses a non-zero value of a field it does not know.

The notation of ``TABLE``: entries ``Name(field field ...)``, separated by
white space, with ``#`` lines as comments; each field is
``<number><jsonName>[:<kind>][*][!]``, where kind is ``s`` (string, the
default), ``i`` (varint integer), ``b`` (bool), ``y`` (bytes, base64 in JSON),
``d`` (double), ``r`` (raw bytes for a converter), ``{v}`` (a map from string
to kind ``v``) or a message type; ``*`` marks a repeated field and ``!`` a
field whose zero value is kept (a Go pointer, or a value without
``omitempty``). An empty jsonName is a Go-embedded struct whose fields are
inlined into the parent. In-tree volume plugins removed from Kubernetes have
no entry (a pod using one is refused with a 400).
"""

from __future__ import annotations

from typing import Final

__all__ = ["KINDS", "SUPPORTED_KINDS", "TABLE"]

KINDS: Final = {
    "v1": "Binding ConfigMap Namespace Pod ResourceQuota Secret Service ServiceAccount",
    "apps/v1": "DaemonSet Deployment ReplicaSet",
    "batch/v1": "CronJob Job",
    "policy/v1": "Eviction PodDisruptionBudget",
    "scheduling.k8s.io/v1": "PriorityClass",
    "rbac.authorization.k8s.io/v1": "ClusterRole ClusterRoleBinding Role RoleBinding",
    "autoscaling/v1": "Scale",
    "networking.k8s.io/v1": "Ingress",
    "events.k8s.io/v1": "Event",
    "coordination.k8s.io/v1": "Lease",
}
"""The kinds whose bodies can be read, by apiVersion (space-separated); ``DeleteOptions`` is read under
every apiVersion."""

SUPPORTED_KINDS: Final = frozenset((gv, kind) for gv, kinds in KINDS.items() for kind in kinds.split())
"""(apiVersion, kind) pairs ``protobuf.decode`` reads, besides ``DeleteOptions`` of any apiVersion."""

TABLE: Final = """
# the envelope, and types with a JSON form of their own (the decoder converts them)
Unknown(1typeMeta:TypeMeta 2raw:r! 3contentEncoding! 4contentType!) TypeMeta(1apiVersion! 2kind!)
Time(1seconds:i! 2nanos:i!) MicroTime(1seconds:i! 2nanos:i!) Quantity(1string!)
IntOrString(1type:i! 2intVal:i! 3strVal!) FieldsV1(1Raw:r!) RawExtension(1raw:r!)
# meta/v1
Condition(1type! 2status! 3observedGeneration:i 4lastTransitionTime:Time 5reason! 6message!)
DeleteOptions(1gracePeriodSeconds:i! 2preconditions:Preconditions 3orphanDependents:b! 4propagationPolicy! 5dryRun*
    6ignoreStoreReadErrorWithClusterBreakingPotential:b!)
LabelSelector(1matchLabels:{} 2matchExpressions:LabelSelectorRequirement*)
LabelSelectorRequirement(1key! 2operator! 3values*)
ManagedFieldsEntry(1manager 2operation 3apiVersion 4time:Time 6fieldsType 7fieldsV1:FieldsV1 8subresource)
ObjectMeta(1name 2generateName 3namespace 4selfLink 5uid 6resourceVersion 7generation:i 8creationTimestamp:Time
    9deletionTimestamp:Time 10deletionGracePeriodSeconds:i! 11labels:{} 12annotations:{}
    13ownerReferences:OwnerReference* 14finalizers* 17managedFields:ManagedFieldsEntry*)
OwnerReference(1kind! 3name! 4uid! 5apiVersion! 6controller:b! 7blockOwnerDeletion:b!)
Preconditions(1uid! 2resourceVersion!)
# core/v1
Affinity(1nodeAffinity:NodeAffinity 2podAffinity:PodAffinity 3podAntiAffinity:PodAntiAffinity)
AppArmorProfile(1type! 2localhostProfile!) Binding(1metadata:ObjectMeta 2target:ObjectReference)
CSIVolumeSource(1driver! 2readOnly:b! 3fsType! 4volumeAttributes:{} 5nodePublishSecretRef:LocalObjectReference)
Capabilities(1add* 2drop*) ClientIPConfig(1timeoutSeconds:i!)
ClusterTrustBundleProjection(1name! 2signerName! 3labelSelector:LabelSelector 4path! 5optional:b! 6user:i!)
ConfigMap(1metadata:ObjectMeta 2data:{} 3binaryData:{y} 4immutable:b!)
ConfigMapEnvSource(1:LocalObjectReference 2optional:b!)
ConfigMapKeySelector(1:LocalObjectReference 2key! 3optional:b!)
ConfigMapProjection(1:LocalObjectReference 2items:KeyToPath* 4optional:b!)
ConfigMapVolumeSource(1:LocalObjectReference 2items:KeyToPath* 3defaultMode:i! 4optional:b! 5defaultUser:i!)
Container(1name! 2image 3command* 4args* 5workingDir 6ports:ContainerPort* 7env:EnvVar*
    8resources:ResourceRequirements 9volumeMounts:VolumeMount* 10livenessProbe:Probe 11readinessProbe:Probe
    12lifecycle:Lifecycle 13terminationMessagePath 14imagePullPolicy 15securityContext:SecurityContext 16stdin:b
    17stdinOnce:b 18tty:b 19envFrom:EnvFromSource* 20terminationMessagePolicy 21volumeDevices:VolumeDevice*
    22startupProbe:Probe 23resizePolicy:ContainerResizePolicy* 24restartPolicy!
    25restartPolicyRules:ContainerRestartRule*)
ContainerExtendedResourceRequest(1containerName! 2resourceName! 3requestName!)
ContainerPort(1name 2hostPort:i 3containerPort:i! 4protocol 5hostIP)
ContainerResizePolicy(1resourceName! 2restartPolicy!)
ContainerRestartRule(1action 2exitCodes:ContainerRestartRuleOnExitCodes)
ContainerRestartRuleOnExitCodes(1operator 2values:i*)
ContainerState(1waiting:ContainerStateWaiting 2running:ContainerStateRunning 3terminated:ContainerStateTerminated)
ContainerStateRunning(1startedAt:Time)
ContainerStateTerminated(1exitCode:i! 2signal:i 3reason 4message 5startedAt:Time 6finishedAt:Time 7containerID)
ContainerStateWaiting(1reason 2message)
ContainerStatus(1name! 2state:ContainerState 3lastState:ContainerState 4ready:b! 5restartCount:i! 6image! 7imageID!
    8containerID 9started:b! 10allocatedResources:{Quantity} 11resources:ResourceRequirements
    12volumeMounts:VolumeMountStatus* 13user:ContainerUser 14allocatedResourcesStatus:ResourceStatus* 15stopSignal!)
ContainerUser(1linux:LinuxContainerUser) DownwardAPIProjection(1items:DownwardAPIVolumeFile*)
DownwardAPIVolumeFile(1path! 2fieldRef:ObjectFieldSelector 3resourceFieldRef:ResourceFieldSelector 4mode:i! 5user:i!)
DownwardAPIVolumeSource(1items:DownwardAPIVolumeFile* 2defaultMode:i! 3defaultUser:i!)
EmptyDirVolumeSource(1medium 2sizeLimit:Quantity 3mode:i!)
EnvFromSource(1prefix 2configMapRef:ConfigMapEnvSource 3secretRef:SecretEnvSource)
EnvVar(1name! 2value 3valueFrom:EnvVarSource)
EnvVarSource(1fieldRef:ObjectFieldSelector 2resourceFieldRef:ResourceFieldSelector
    3configMapKeyRef:ConfigMapKeySelector 4secretKeyRef:SecretKeySelector 5fileKeyRef:FileKeySelector)
EphemeralContainer(2targetContainerName) EphemeralVolumeSource(1volumeClaimTemplate:PersistentVolumeClaimTemplate)
EventSource(1component 2host) EvictionResponder(1name! 2priority:i!) ExecAction(1command*)
FileKeySelector(1volumeName! 2path! 3key! 4optional:b!)
GCEPersistentDiskVolumeSource(1pdName! 2fsType 3partition:i 4readOnly:b) GRPCAction(1port:i! 2service! 3mode!)
HTTPGetAction(1path 2port:IntOrString 3host 4scheme 5httpHeaders:HTTPHeader* 6protocol!) HTTPHeader(1name! 2value!)
HostAlias(1ip! 2hostnames*) HostIP(1ip!) HostPathVolumeSource(1path! 2type!) ImageVolumeSource(1reference 2pullPolicy)
ImageVolumeStatus(1imageRef) KeyToPath(1key! 2path! 3mode:i! 4user:i!)
Lifecycle(1postStart:LifecycleHandler 2preStop:LifecycleHandler 3stopSignal!)
LifecycleHandler(1exec:ExecAction 2httpGet:HTTPGetAction 3tcpSocket:TCPSocketAction 4sleep:SleepAction)
LinuxContainerUser(1uid:i! 2gid:i! 3supplementalGroups:i*)
LoadBalancerIngress(1ip 2hostname 3ipMode! 4ports:PortStatus*) LoadBalancerStatus(1ingress:LoadBalancerIngress*)
LocalObjectReference(1name) NFSVolumeSource(1server! 2path! 3readOnly:b)
Namespace(1metadata:ObjectMeta 2spec:NamespaceSpec 3status:NamespaceStatus)
NamespaceCondition(1type! 2status! 4lastTransitionTime:Time 5reason 6message) NamespaceSpec(1finalizers*)
NamespaceStatus(1phase 2conditions:NamespaceCondition*)
NodeAffinity(1requiredDuringSchedulingIgnoredDuringExecution:NodeSelector
    2preferredDuringSchedulingIgnoredDuringExecution:PreferredSchedulingTerm*)
NodeAllocatableMappedResources(1name! 2quantity:Quantity)
NodeAllocatableOverheadResources(1name! 2perPod:Quantity 3perContainer:Quantity)
NodeAllocatableResourceClaimStatus(1resourceClaimName! 2containers* 4mapping:NodeAllocatableMappedResources*
    5overhead:NodeAllocatableOverheadResources*) NodeSelector(1nodeSelectorTerms:NodeSelectorTerm*)
NodeSelectorRequirement(1key! 2operator! 3values*)
NodeSelectorTerm(1matchExpressions:NodeSelectorRequirement* 2matchFields:NodeSelectorRequirement*)
ObjectFieldSelector(1apiVersion 2fieldPath!)
ObjectReference(1kind 2namespace 3name 4uid 5apiVersion 6resourceVersion 7fieldPath)
PersistentVolumeClaimSpec(1accessModes* 2resources:VolumeResourceRequirements 3volumeName 4selector:LabelSelector
    5storageClassName! 6volumeMode! 7dataSource:TypedLocalObjectReference 8dataSourceRef:TypedObjectReference
    9volumeAttributesClassName!) PersistentVolumeClaimTemplate(1metadata:ObjectMeta 2spec:PersistentVolumeClaimSpec)
PersistentVolumeClaimVolumeSource(1claimName! 2readOnly:b) Pod(1metadata:ObjectMeta 2spec:PodSpec 3status:PodStatus)
PodAffinity(1requiredDuringSchedulingIgnoredDuringExecution:PodAffinityTerm*
    2preferredDuringSchedulingIgnoredDuringExecution:WeightedPodAffinityTerm*)
PodAffinityTerm(1labelSelector:LabelSelector 2namespaces* 3topologyKey! 4namespaceSelector:LabelSelector
    5matchLabelKeys* 6mismatchLabelKeys*)
PodAntiAffinity(1requiredDuringSchedulingIgnoredDuringExecution:PodAffinityTerm*
    2preferredDuringSchedulingIgnoredDuringExecution:WeightedPodAffinityTerm*)
PodCertificateProjection(1signerName 2keyType 3maxExpirationSeconds:i! 4credentialBundlePath 5keyPath
    6certificateChainPath 7userAnnotations:{} 8user:i!)
PodCondition(1type! 2status! 3lastProbeTime:Time 4lastTransitionTime:Time 5reason 6message 7observedGeneration:i)
PodDNSConfig(1nameservers* 2searches* 3options:PodDNSConfigOption*) PodDNSConfigOption(1name 2value!)
PodExtendedResourceClaimStatus(1requestMappings:ContainerExtendedResourceRequest* 2resourceClaimName!) PodIP(1ip!)
PodOS(1name!) PodReadinessGate(1conditionType!)
PodResourceClaim(1name! 3resourceClaimName! 4resourceClaimTemplateName!)
PodResourceClaimStatus(1name! 2resourceClaimName!) PodSchedulingGate(1name!) PodSchedulingGroup(1podGroupName!)
PodSecurityContext(1seLinuxOptions:SELinuxOptions 2runAsUser:i! 3runAsNonRoot:b! 4supplementalGroups:i* 5fsGroup:i!
    6runAsGroup:i! 7sysctls:Sysctl* 8windowsOptions:WindowsSecurityContextOptions 9fsGroupChangePolicy!
    10seccompProfile:SeccompProfile 11appArmorProfile:AppArmorProfile 12supplementalGroupsPolicy!
    13seLinuxChangePolicy!)
PodSpec(1volumes:Volume* 2containers:Container* 3restartPolicy 4terminationGracePeriodSeconds:i!
    5activeDeadlineSeconds:i! 6dnsPolicy 7nodeSelector:{} 8serviceAccountName 9serviceAccount 10nodeName
    11hostNetwork:b 12hostPID:b 13hostIPC:b 14securityContext:PodSecurityContext
    15imagePullSecrets:LocalObjectReference* 16hostname 17subdomain 18affinity:Affinity 19schedulerName
    20initContainers:Container* 21automountServiceAccountToken:b! 22tolerations:Toleration* 23hostAliases:HostAlias*
    24priorityClassName 25priority:i! 26dnsConfig:PodDNSConfig 27shareProcessNamespace:b!
    28readinessGates:PodReadinessGate* 29runtimeClassName! 30enableServiceLinks:b! 31preemptionPolicy!
    32overhead:{Quantity} 33topologySpreadConstraints:TopologySpreadConstraint*
    34ephemeralContainers:EphemeralContainer* 35setHostnameAsFQDN:b! 36os:PodOS 37hostUsers:b!
    38schedulingGates:PodSchedulingGate* 39resourceClaims:PodResourceClaim* 40resources:ResourceRequirements
    41hostnameOverride! 43schedulingGroup:PodSchedulingGroup 44evictionResponders:EvictionResponder*)
PodStatus(1phase 2conditions:PodCondition* 3message 4reason 5hostIP 6podIP 7startTime:Time
    8containerStatuses:ContainerStatus* 9qosClass 10initContainerStatuses:ContainerStatus* 11nominatedNodeName
    12podIPs:PodIP* 13ephemeralContainerStatuses:ContainerStatus* 14resize
    15resourceClaimStatuses:PodResourceClaimStatus* 16hostIPs:HostIP* 17observedGeneration:i
    18extendedResourceClaimStatus:PodExtendedResourceClaimStatus 19allocatedResources:{Quantity}
    20resources:ResourceRequirements 21nodeAllocatableResourceClaimStatuses:NodeAllocatableResourceClaimStatus*
    22volumeHealth:PodVolumeHealth*) PodTemplateSpec(1metadata:ObjectMeta 2spec:PodSpec)
PodVolumeHealth(1name! 2healthConditions:VolumeHealthCondition* 3lastTransitionTime:Time)
PortStatus(1port:i! 2protocol! 3error!) PreferredSchedulingTerm(1weight:i! 2preference:NodeSelectorTerm)
Probe(1:ProbeHandler 2initialDelaySeconds:i 3timeoutSeconds:i 4periodSeconds:i 5successThreshold:i 6failureThreshold:i
    7terminationGracePeriodSeconds:i!)
ProbeHandler(1exec:ExecAction 2httpGet:HTTPGetAction 3tcpSocket:TCPSocketAction 4grpc:GRPCAction)
ProjectedVolumeSource(1sources:VolumeProjection* 2defaultMode:i! 3defaultUser:i!) ResourceClaim(1name! 2request)
ResourceFieldSelector(1containerName 2resource! 3divisor:Quantity) ResourceHealth(1resourceID! 2health 6message!)
ResourceQuota(1metadata:ObjectMeta 2spec:ResourceQuotaSpec 3status:ResourceQuotaStatus)
ResourceQuotaSpec(1hard:{Quantity} 2scopes* 3scopeSelector:ScopeSelector)
ResourceQuotaStatus(1hard:{Quantity} 2used:{Quantity})
ResourceRequirements(1limits:{Quantity} 2requests:{Quantity} 3claims:ResourceClaim*)
ResourceStatus(1name! 2resources:ResourceHealth*) SELinuxOptions(1user 2role 3type 4level)
ScopeSelector(1matchExpressions:ScopedResourceSelectorRequirement*)
ScopedResourceSelectorRequirement(1scopeName! 2operator! 3values*) SeccompProfile(1type! 2localhostProfile!)
Secret(1metadata:ObjectMeta 2data:{y} 3type 4stringData:{} 5immutable:b!)
SecretEnvSource(1:LocalObjectReference 2optional:b!) SecretKeySelector(1:LocalObjectReference 2key! 3optional:b!)
SecretProjection(1:LocalObjectReference 2items:KeyToPath* 4optional:b!)
SecretVolumeSource(1secretName 2items:KeyToPath* 3defaultMode:i! 4optional:b! 5defaultUser:i!)
SecurityContext(1capabilities:Capabilities 2privileged:b! 3seLinuxOptions:SELinuxOptions 4runAsUser:i!
    5runAsNonRoot:b! 6readOnlyRootFilesystem:b! 7allowPrivilegeEscalation:b! 8runAsGroup:i! 9procMount!
    10windowsOptions:WindowsSecurityContextOptions 11seccompProfile:SeccompProfile 12appArmorProfile:AppArmorProfile)
Service(1metadata:ObjectMeta 2spec:ServiceSpec 3status:ServiceStatus)
ServiceAccount(1metadata:ObjectMeta 2secrets:ObjectReference* 3imagePullSecrets:LocalObjectReference*
    4automountServiceAccountToken:b!) ServiceAccountTokenProjection(1audience 2expirationSeconds:i! 3path! 4user:i!)
ServicePort(1name 2protocol 3port:i! 4targetPort:IntOrString 5nodePort:i 6appProtocol!)
ServiceSpec(1ports:ServicePort* 2selector:{} 3clusterIP 4type 5externalIPs* 7sessionAffinity 8loadBalancerIP
    9loadBalancerSourceRanges* 10externalName 11externalTrafficPolicy 12healthCheckNodePort:i
    13publishNotReadyAddresses:b 14sessionAffinityConfig:SessionAffinityConfig 17ipFamilyPolicy! 18clusterIPs*
    19ipFamilies* 20allocateLoadBalancerNodePorts:b! 21loadBalancerClass! 22internalTrafficPolicy!
    23trafficDistribution!) ServiceStatus(1loadBalancer:LoadBalancerStatus 2conditions:Condition*)
SessionAffinityConfig(1clientIP:ClientIPConfig) SleepAction(1seconds:i!) Sysctl(1name! 2value!)
TCPSocketAction(1port:IntOrString 2host) Toleration(1key 2operator 3value 4effect 5tolerationSeconds:i!)
TopologySpreadConstraint(1maxSkew:i! 2topologyKey! 3whenUnsatisfiable! 4labelSelector:LabelSelector 5minDomains:i!
    6nodeAffinityPolicy! 7nodeTaintsPolicy! 8matchLabelKeys*) TypedLocalObjectReference(1apiGroup! 2kind! 3name!)
TypedObjectReference(1apiGroup! 2kind! 3name! 4namespace!) Volume(1name! 2:VolumeSource)
VolumeDevice(1name! 2devicePath!) VolumeHealthCondition(1status! 2reason! 3message)
VolumeMount(1name! 2readOnly:b 3mountPath! 4subPath 5mountPropagation! 6subPathExpr 7recursiveReadOnly!
    8bindMountOptions*)
VolumeMountStatus(1name! 2mountPath! 3readOnly:b 4recursiveReadOnly! 5volumeStatus:VolumeStatus)
VolumeProjection(1secret:SecretProjection 2downwardAPI:DownwardAPIProjection 3configMap:ConfigMapProjection
    4serviceAccountToken:ServiceAccountTokenProjection 5clusterTrustBundle:ClusterTrustBundleProjection
    6podCertificate:PodCertificateProjection) VolumeResourceRequirements(1limits:{Quantity} 2requests:{Quantity})
VolumeSource(1hostPath:HostPathVolumeSource 2emptyDir:EmptyDirVolumeSource
    3gcePersistentDisk:GCEPersistentDiskVolumeSource 6secret:SecretVolumeSource 7nfs:NFSVolumeSource
    10persistentVolumeClaim:PersistentVolumeClaimVolumeSource 16downwardAPI:DownwardAPIVolumeSource
    19configMap:ConfigMapVolumeSource 26projected:ProjectedVolumeSource 28csi:CSIVolumeSource
    29ephemeral:EphemeralVolumeSource 30image:ImageVolumeSource) VolumeStatus(1image:ImageVolumeStatus)
WeightedPodAffinityTerm(1weight:i! 2podAffinityTerm:PodAffinityTerm)
WindowsSecurityContextOptions(1gmsaCredentialSpecName! 2gmsaCredentialSpec! 3runAsUserName! 4hostProcess:b!)
# apps/v1
DaemonSet(1metadata:ObjectMeta 2spec:DaemonSetSpec 3status:DaemonSetStatus)
DaemonSetCondition(1type! 2status! 3lastTransitionTime:Time 4reason 5message)
DaemonSetSpec(1selector:LabelSelector 2template:PodTemplateSpec 3updateStrategy:DaemonSetUpdateStrategy
    4minReadySeconds:i 6revisionHistoryLimit:i!)
DaemonSetStatus(1currentNumberScheduled:i! 2numberMisscheduled:i! 3desiredNumberScheduled:i! 4numberReady:i!
    5observedGeneration:i 6updatedNumberScheduled:i 7numberAvailable:i 8numberUnavailable:i 9collisionCount:i!
    10conditions:DaemonSetCondition*) DaemonSetUpdateStrategy(1type 2rollingUpdate:RollingUpdateDaemonSet)
Deployment(1metadata:ObjectMeta 2spec:DeploymentSpec 3status:DeploymentStatus)
DeploymentCondition(1type! 2status! 4reason 5message 6lastUpdateTime:Time 7lastTransitionTime:Time)
DeploymentSpec(1replicas:i! 2selector:LabelSelector 3template:PodTemplateSpec 4strategy:DeploymentStrategy
    5minReadySeconds:i 6revisionHistoryLimit:i! 7paused:b 9progressDeadlineSeconds:i!)
DeploymentStatus(1observedGeneration:i 2replicas:i 3updatedReplicas:i 4availableReplicas:i 5unavailableReplicas:i
    6conditions:DeploymentCondition* 7readyReplicas:i 8collisionCount:i! 9terminatingReplicas:i!)
DeploymentStrategy(1type 2rollingUpdate:RollingUpdateDeployment)
ReplicaSet(1metadata:ObjectMeta 2spec:ReplicaSetSpec 3status:ReplicaSetStatus)
ReplicaSetCondition(1type! 2status! 3lastTransitionTime:Time 4reason 5message)
ReplicaSetSpec(1replicas:i! 2selector:LabelSelector 3template:PodTemplateSpec 4minReadySeconds:i)
ReplicaSetStatus(1replicas:i! 2fullyLabeledReplicas:i 3observedGeneration:i 4readyReplicas:i 5availableReplicas:i
    6conditions:ReplicaSetCondition* 7terminatingReplicas:i!)
RollingUpdateDaemonSet(1maxUnavailable:IntOrString 2maxSurge:IntOrString)
RollingUpdateDeployment(1maxUnavailable:IntOrString 2maxSurge:IntOrString)
# batch/v1
CronJob(1metadata:ObjectMeta 2spec:CronJobSpec 3status:CronJobStatus)
CronJobSpec(1schedule! 2startingDeadlineSeconds:i! 3concurrencyPolicy 4suspend:b! 5jobTemplate:JobTemplateSpec
    6successfulJobsHistoryLimit:i! 7failedJobsHistoryLimit:i! 8timeZone!)
CronJobStatus(1active:ObjectReference* 4lastScheduleTime:Time 5lastSuccessfulTime:Time)
Job(1metadata:ObjectMeta 2spec:JobSpec 3status:JobStatus)
JobCondition(1type! 2status! 3lastProbeTime:Time 4lastTransitionTime:Time 5reason 6message)
JobSpec(1parallelism:i! 2completions:i! 3activeDeadlineSeconds:i! 4selector:LabelSelector 5manualSelector:b!
    6template:PodTemplateSpec 7backoffLimit:i! 8ttlSecondsAfterFinished:i! 9completionMode! 10suspend:b!
    11podFailurePolicy:PodFailurePolicy 12backoffLimitPerIndex:i! 13maxFailedIndexes:i! 14podReplacementPolicy!
    15managedBy! 16successPolicy:SuccessPolicy)
JobStatus(1conditions:JobCondition* 2startTime:Time 3completionTime:Time 4active:i 5succeeded:i 6failed:i
    7completedIndexes 8uncountedTerminatedPods:UncountedTerminatedPods 9ready:i! 10failedIndexes! 11terminating:i!)
JobTemplateSpec(1metadata:ObjectMeta 2spec:JobSpec) PodFailurePolicy(1rules:PodFailurePolicyRule*)
PodFailurePolicyOnExitCodesRequirement(1containerName! 2operator! 3values:i*)
PodFailurePolicyOnPodConditionsPattern(1type! 2status!)
PodFailurePolicyRule(1action! 2onExitCodes:PodFailurePolicyOnExitCodesRequirement
    3onPodConditions:PodFailurePolicyOnPodConditionsPattern*) SuccessPolicy(1rules:SuccessPolicyRule*)
SuccessPolicyRule(1succeededIndexes! 2succeededCount:i!) UncountedTerminatedPods(1succeeded* 2failed*)
# policy/v1
Eviction(1metadata:ObjectMeta 2deleteOptions:DeleteOptions)
PodDisruptionBudget(1metadata:ObjectMeta 2spec:PodDisruptionBudgetSpec 3status:PodDisruptionBudgetStatus)
PodDisruptionBudgetSpec(1minAvailable:IntOrString 2selector:LabelSelector 3maxUnavailable:IntOrString
    4unhealthyPodEvictionPolicy!)
PodDisruptionBudgetStatus(1observedGeneration:i 2disruptedPods:{Time} 3disruptionsAllowed:i! 4currentHealthy:i!
    5desiredHealthy:i! 6expectedPods:i! 7conditions:Condition*)
# scheduling.k8s.io/v1
PriorityClass(1metadata:ObjectMeta 2value:i! 3globalDefault:b 4description 5preemptionPolicy!)
# rbac.authorization.k8s.io/v1
AggregationRule(1clusterRoleSelectors:LabelSelector*)
ClusterRole(1metadata:ObjectMeta 2rules:PolicyRule* 3aggregationRule:AggregationRule)
ClusterRoleBinding(1metadata:ObjectMeta 2subjects:Subject* 3roleRef:RoleRef)
PolicyRule(1verbs* 2apiGroups* 3resources* 4resourceNames* 5nonResourceURLs*)
Role(1metadata:ObjectMeta 2rules:PolicyRule*) RoleBinding(1metadata:ObjectMeta 2subjects:Subject* 3roleRef:RoleRef)
RoleRef(1apiGroup! 2kind! 3name!) Subject(1kind! 2apiGroup 3name! 4namespace)
# autoscaling/v1
Scale(1metadata:ObjectMeta 2spec:ScaleSpec 3status:ScaleStatus) ScaleSpec(1replicas:i)
ScaleStatus(1replicas:i! 2selector)
# networking.k8s.io/v1
HTTPIngressPath(1path 2backend:IngressBackend 3pathType!) HTTPIngressRuleValue(1paths:HTTPIngressPath*)
Ingress(1metadata:ObjectMeta 2spec:IngressSpec 3status:IngressStatus)
IngressBackend(3resource:TypedLocalObjectReference 4service:IngressServiceBackend)
IngressLoadBalancerIngress(1ip 2hostname 4ports:IngressPortStatus*)
IngressLoadBalancerStatus(1ingress:IngressLoadBalancerIngress*) IngressPortStatus(1port:i! 2protocol! 3error!)
IngressRule(1host 2:IngressRuleValue) IngressRuleValue(1http:HTTPIngressRuleValue)
IngressServiceBackend(1name! 2port:ServiceBackendPort)
IngressSpec(1defaultBackend:IngressBackend 2tls:IngressTLS* 3rules:IngressRule* 4ingressClassName!)
IngressStatus(1loadBalancer:IngressLoadBalancerStatus) IngressTLS(1hosts* 2secretName)
ServiceBackendPort(1name 2number:i)
# events.k8s.io/v1
Event(1metadata:ObjectMeta 2eventTime:MicroTime 3series:EventSeries 4reportingController 5reportingInstance 6action
    7reason 8regarding:ObjectReference 9related:ObjectReference 10note 11type 12deprecatedSource:EventSource
    13deprecatedFirstTimestamp:Time 14deprecatedLastTimestamp:Time 15deprecatedCount:i)
EventSeries(1count:i! 2lastObservedTime:MicroTime)
# coordination.k8s.io/v1
Lease(1metadata:ObjectMeta 2spec:LeaseSpec)
LeaseSpec(1holderIdentity! 2leaseDurationSeconds:i! 3acquireTime:MicroTime 4renewTime:MicroTime 5leaseTransitions:i!
    6strategy! 7preferredHolder!)
"""
"""The message types, in the notation of this module's docstring."""
